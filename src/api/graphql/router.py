"""`graphql_router(services)`: the schema behind `/graphql` with its limits (depth, aliases,
tokens), GraphiQL and introspection as the settings say, and subscriptions over
graphql-transport-ws only, authenticated by the `connection_init` payload."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import strawberry
from graphql import GraphQLError
from strawberry.exceptions import ConnectionRejectionError
from strawberry.extensions import (
    DisableIntrospection,
    MaskErrors,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    QueryDepthLimiter,
    SchemaExtension,
)
from strawberry.fastapi import GraphQLRouter
from strawberry.schema.config import StrawberryConfig
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.types import ExecutionContext
from strawberry.types.unset import UnsetType

from api.deps import Services
from api.graphql.context import GraphQLContext, authenticate_params, context_getter, off_loop
from api.graphql.mutations import Mutation
from api.graphql.queries import Query
from api.graphql.results import Refusal
from api.graphql.scalars import SCALARS
from api.graphql.subscriptions import Subscription
from api.graphql.types import Load

__all__ = ["MAX_ALIASES", "MAX_DEPTH", "MAX_TOKENS", "build_schema", "graphql_router"]

MAX_DEPTH = 10
MAX_ALIASES = 30
MAX_TOKENS = 2000


class FreshLoaders(SchemaExtension):
    """Each operation gets new loaders, also on a WebSocket that carries many of them."""

    def on_operation(self) -> Iterator[None]:
        context = self.execution_context.context
        if isinstance(context, GraphQLContext):
            context.refresh_loaders()
        yield


def _unexpected(error: GraphQLError) -> bool:
    """Mask what a resolver raised that is not a GraphQL error of ours (its text may say
    more than a caller should know); refusals, permissions and validation stay readable."""
    return error.path is not None and not isinstance(
        error.original_error, GraphQLError | type(None)
    )


class _Schema(strawberry.Schema):
    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        """Logs what went wrong on the server; refusals and bad requests are the caller's."""
        super().process_errors([e for e in errors if _unexpected(e)], execution_context)


def build_schema(services: Services) -> strawberry.Schema:
    extensions: list[Callable[[], SchemaExtension] | type[SchemaExtension]] = [
        lambda: QueryDepthLimiter(max_depth=MAX_DEPTH),
        lambda: MaxAliasesLimiter(max_alias_count=MAX_ALIASES),
        lambda: MaxTokensLimiter(max_token_count=MAX_TOKENS),
        lambda: MaskErrors(should_mask_error=_unexpected),
        FreshLoaders,
    ]
    if not services.introspection:
        extensions.append(DisableIntrospection)
    return _Schema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        types=[Load, Refusal],
        extensions=extensions,
        config=StrawberryConfig(scalar_map=SCALARS),
    )


class _Router(GraphQLRouter[GraphQLContext, None]):
    def __init__(self, services: Services, schema: strawberry.Schema) -> None:
        super().__init__(
            schema,
            graphql_ide="graphiql" if services.graphiql else None,
            context_getter=context_getter(services),
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
        )
        self.services = services

    async def on_ws_connect(self, context: GraphQLContext) -> UnsetType | dict[str, object] | None:
        """Authenticates a subscription connection by `{"Authorization": "Bearer …"}` in the
        `connection_init` payload; a missing or unknown key closes it (4403)."""
        params = context.connection_params if isinstance(context.connection_params, dict) else {}
        principal = await off_loop(authenticate_params, self.services, params)
        if principal is None and ("Authorization" in params or "authorization" in params):
            raise ConnectionRejectionError({"message": "the API key is unknown or revoked"})
        principal = principal or context.principal
        if principal is None:
            raise ConnectionRejectionError(
                {"message": 'an API key is required: {"Authorization": "Bearer …"}'}
            )
        context.authenticate(principal)
        return UnsetType()  # acknowledge without a payload


def graphql_router(services: Services) -> GraphQLRouter[GraphQLContext, None]:
    """The GraphQL endpoint over these services (mounted at /graphql by `api.app`)."""
    return _Router(services, build_schema(services))
