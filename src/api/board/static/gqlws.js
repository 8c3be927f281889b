// A small graphql-transport-ws client (https://github.com/enisdenjo/graphql-ws, PROTOCOL.md):
// connection_init with a payload → connection_ack; subscribe → next… → complete | error;
// ping ⇄ pong both ways. One WebSocket per Connection; the caller decides about reconnecting.

export const PROTOCOL = "graphql-transport-ws";

/** Close codes the protocol defines, as a dispatcher should read them. */
export const CLOSE_REASONS = {
  4400: "the server could not understand a message (bad request)",
  4401: "subscribed before the server acknowledged the connection",
  4403: "the server refused the API key",
  4406: "the server does not speak graphql-transport-ws",
  4408: "the connection was not acknowledged in time",
  4409: "a subscription with the same id already exists",
  4429: "too many connection requests",
};

const ACK_TIMEOUT_MS = 10000;
const PING_EVERY_MS = 15000;
const PONG_TIMEOUT_MS = 10000;
const CLIENT_TIMEOUT = 3008; // our own code (3000–3999 are free for applications)

export class Connection {
  /**
   * @param {string} url ws:// or wss:// URL of the GraphQL endpoint
   * @param {object} payload the connection_init payload (e.g. {Authorization: "Bearer …"})
   * @param {{onAck?: () => void, onClose?: (code: number, reason: string, acked: boolean) => void}} handlers
   */
  constructor(url, payload, handlers = {}) {
    this.handlers = handlers;
    this.sinks = new Map();
    this.acked = false;
    this.closed = false;
    this.socket = new WebSocket(url, PROTOCOL);
    this.ackTimer = setTimeout(() => this.close(CLIENT_TIMEOUT, "no connection_ack"), ACK_TIMEOUT_MS);
    this.pingTimer = null;
    this.pongTimer = null;
    this.socket.addEventListener("open", () => {
      if (this.socket.protocol !== PROTOCOL) {
        this.close(4406, "subprotocol not accepted");
        return;
      }
      this.send({ type: "connection_init", payload });
    });
    this.socket.addEventListener("message", (event) => this.receive(event.data));
    this.socket.addEventListener("close", (event) => this.closedBy(event.code, event.reason));
  }

  send(message) {
    if (this.socket.readyState === WebSocket.OPEN) {
      this.socket.send(JSON.stringify(message));
    }
  }

  /**
   * Starts an operation; `sink.next(result)` gets each `{data, errors}`, `sink.error(errors)`
   * the operation's errors, `sink.complete()` its end. Returns a function that stops it.
   */
  subscribe(id, request, sink) {
    this.sinks.set(id, sink);
    this.send({ id, type: "subscribe", payload: request });
    return () => {
      if (this.sinks.delete(id)) {
        this.send({ id, type: "complete" });
      }
    };
  }

  close(code = 1000, reason = "done") {
    if (this.closed) return;
    try {
      this.socket.close(code, reason);
    } finally {
      this.closedBy(code, reason);
    }
  }

  receive(text) {
    let message;
    try {
      message = JSON.parse(text);
    } catch {
      this.close(4400, "a message that is not JSON");
      return;
    }
    if (!message || typeof message.type !== "string") {
      this.close(4400, "a message without a type");
      return;
    }
    this.alive();
    const sink = message.id === undefined ? undefined : this.sinks.get(message.id);
    switch (message.type) {
      case "connection_ack":
        clearTimeout(this.ackTimer);
        this.acked = true;
        this.pingTimer = setInterval(() => this.ping(), PING_EVERY_MS);
        this.handlers.onAck?.();
        break;
      case "ping":
        this.send({ type: "pong" });
        break;
      case "pong":
        break;
      case "next":
        sink?.next(message.payload ?? {});
        break;
      case "error":
        this.sinks.delete(message.id);
        sink?.error(Array.isArray(message.payload) ? message.payload : [message.payload]);
        break;
      case "complete":
        this.sinks.delete(message.id);
        sink?.complete();
        break;
      default:
        this.close(4400, `unexpected message type ${message.type}`);
    }
  }

  ping() {
    this.send({ type: "ping" });
    clearTimeout(this.pongTimer);
    this.pongTimer = setTimeout(() => this.close(CLIENT_TIMEOUT, "no pong"), PONG_TIMEOUT_MS);
  }

  alive() {
    clearTimeout(this.pongTimer);
  }

  closedBy(code, reason) {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.ackTimer);
    clearTimeout(this.pongTimer);
    clearInterval(this.pingTimer);
    this.sinks.clear();
    this.handlers.onClose?.(code, reason, this.acked);
  }
}

/** A sentence for a close code and reason, for the board's error list. */
export function describeClose(code, reason) {
  const known = CLOSE_REASONS[code];
  const said = reason ? ` (“${reason}”)` : "";
  if (known) return `${known}: close code ${code}${said}`;
  if (code === 1006) return "the connection dropped (close code 1006)";
  if (code === CLIENT_TIMEOUT) return `the server stopped answering${said}`;
  return `the connection closed: code ${code}${said}`;
}
