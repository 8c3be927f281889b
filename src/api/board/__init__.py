"""The dispatcher's web board at `/board` (static HTML, CSS and JavaScript fed by GraphQL).

routes.py         the router serving the page and its assets, with the security headers
static/           board.html, board.css, board.js (the page), gqlws.js (graphql-transport-ws)
"""

from api.board.routes import board_router

__all__ = ["board_router"]
