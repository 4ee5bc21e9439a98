import type { Socket } from 'node:net';
import { ClientConnection, type ClientConnectionOptions, coarseClock } from './client-connection.js';

export interface ConnectionTimeouts {
  /** Idle keep-alive time between requests. */
  keepAliveTimeoutMs: number;
  /** Longest time a client may take to send a request head (slow-loris guard). */
  headersTimeoutMs: number;
  /** Longest silence while a request is in flight (the upstream's own timeouts bound it first). */
  activeTimeoutMs: number;
}

/**
 * Owns the client connections: accepts them, enforces their timeouts on a coarse clock and
 * cuts them on shutdown. Requests in flight are counted by the request handler.
 */
export class ConnectionSupervisor {
  readonly connections = new Set<ClientConnection>();
  private readonly connectionOptions: ClientConnectionOptions;
  private readonly keepAliveTimeoutMs: number;
  private readonly headersTimeoutMs: number;
  private readonly activeTimeoutMs: number;
  // As long to read a final answer as to send a head, at most 5 s.
  private readonly closingGraceMs: number;
  private readonly sweeper: NodeJS.Timeout;
  private stopping = false;

  constructor(connectionOptions: ClientConnectionOptions, timeouts: ConnectionTimeouts) {
    this.connectionOptions = connectionOptions;
    this.keepAliveTimeoutMs = timeouts.keepAliveTimeoutMs;
    this.headersTimeoutMs = timeouts.headersTimeoutMs;
    this.activeTimeoutMs = timeouts.activeTimeoutMs;
    this.closingGraceMs = Math.min(5_000, timeouts.headersTimeoutMs);
    // Timeouts on a coarse clock: one sweep a second instead of a timer per socket and request.
    this.sweeper = setInterval(() => this.sweep(Date.now()), 1000).unref();
  }

  /** The listener's connection callback. */
  accept(socket: Socket): void {
    if (this.stopping) {
      socket.destroy();
      return;
    }
    // The sweeper's clock may be up to a second old (or older before the first sweep).
    coarseClock.now = Date.now();
    const connection = new ClientConnection(socket, this.connectionOptions);
    this.connections.add(connection);
    socket.once('close', () => this.connections.delete(connection));
  }

  private sweep(now: number): void {
    coarseClock.now = now;
    for (const connection of this.connections) {
      // Closing: the answer is written; a client that keeps the socket open (or trickles
      // bytes into it) gets a few seconds to read it.
      if (connection.closing) {
        if (connection.closingSince !== 0 && now - connection.closingSince > this.closingGraceMs)
          connection.socket.destroy();
      } else if (connection.partialHead) {
        if (now - connection.headStartedAt > this.headersTimeoutMs) connection.closeWith(408);
      } else if (connection.idle) {
        if (now - connection.lastActiveAt > this.keepAliveTimeoutMs) connection.socket.destroy();
      } else if (now - connection.lastActiveAt > this.activeTimeoutMs) connection.socket.destroy();
    }
  }

  /** Shutdown, first step: refuses new connections and cuts the idle ones. */
  stopAccepting(): void {
    this.stopping = true;
    for (const connection of this.connections) if (connection.idle) connection.socket.destroy();
  }

  /** Shutdown, last step: cuts every connection left and stops the sweeper. */
  destroyAll(): void {
    this.stopping = true;
    for (const connection of this.connections) connection.socket.destroy();
    clearInterval(this.sweeper);
  }
}
