/**
 * Experiment only (BENCH_CHILD_NODELAY=1): loaded into the gateway child with --import, it turns on
 * TCP_NODELAY for every socket the process connects (the delivery client's SMTP connections in particular),
 * to show what disabling Nagle's algorithm there would buy. Not part of Kurir.
 */
import net from 'node:net';

const connect = net.Socket.prototype.connect;
net.Socket.prototype.connect = function (this: net.Socket, ...args: unknown[]) {
  this.setNoDelay(true);
  return (connect as (...a: unknown[]) => net.Socket).apply(this, args);
} as typeof connect;
