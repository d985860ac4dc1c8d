/**
 * Minimal type declarations for the `dns2` package (v2.x ships no types).
 *
 * Only the parts used by the test DNS server (tests/helpers/dns-server.ts)
 * are declared: the wire-format `Packet` codec and the UDP/TCP server classes.
 * `import dns2 from 'dns2'` yields the CommonJS `module.exports` object.
 */
declare module 'dns2' {
  import type { RemoteInfo, Socket as UdpSocket } from 'node:dgram';
  import type { Server as NetServer, Socket as NetSocket } from 'node:net';

  /**
   * The package's main export (a resolver class, undeclared here); its static
   * members `Packet`, `UDPServer` and `TCPServer` come from the merged namespace.
   */
  class dns2 {}

  namespace dns2 {
    /** DNS message header (RFC 1035 §4.1.1). */
    interface PacketHeader {
      id: number;
      qr: number;
      opcode: number;
      aa: number;
      tc: number;
      rd: number;
      ra: number;
      z: number;
      rcode: number;
      qdcount?: number;
      ancount?: number;
      nscount?: number;
      arcount?: number;
    }

    /** Question entry; `name` has no trailing dot. */
    interface PacketQuestion {
      name: string;
      type: number;
      class: number;
    }

    /** Resource record; type-specific fields vary (address, exchange, data, domain...). */
    interface PacketResource {
      name: string;
      type: number;
      class: number;
      ttl: number;
      address?: string;
      exchange?: string;
      priority?: number;
      data?: string | Array<string | Buffer>;
      domain?: string;
      [key: string]: unknown;
    }

    /** Encoder/decoder for DNS messages. */
    class Packet {
      constructor(data?: unknown);
      header: PacketHeader;
      questions: PacketQuestion[];
      answers: PacketResource[];
      authorities: PacketResource[];
      additionals: PacketResource[];
      toBuffer(): Buffer;
      static parse(buffer: Buffer): Packet;
      static TYPE: { [name: string]: number } & {
        A: number;
        NS: number;
        CNAME: number;
        SOA: number;
        PTR: number;
        MX: number;
        TXT: number;
        AAAA: number;
        SRV: number;
        EDNS: number;
        SPF: number;
        ANY: number;
        CAA: number;
      };
      static CLASS: Record<'IN' | 'CS' | 'CH' | 'HS' | 'ANY', number>;
    }

    type SendFn = (response: Packet | Buffer) => unknown;

    /** UDP DNS server: a dgram socket that emits parsed `request` events. */
    class UDPServer extends UdpSocket {
      constructor(options?: { type: 'udp4' | 'udp6' } | ((request: Packet, send: SendFn, rinfo: RemoteInfo) => void));
      listen(port: number, address?: string): Promise<void>;
      on(event: 'request', listener: (request: Packet, send: SendFn, rinfo: RemoteInfo) => void): this;
      on(event: 'requestError', listener: (error: Error) => void): this;
      on(event: string | symbol, listener: (...args: any[]) => void): this;
    }

    /** TCP DNS server: a net.Server answering one length-prefixed query per connection. */
    class TCPServer extends NetServer {
      constructor(options?: (request: Packet, send: SendFn, client: NetSocket) => void);
      on(event: 'request', listener: (request: Packet, send: SendFn, client: NetSocket) => void): this;
      on(event: 'requestError', listener: (error: Error) => void): this;
      on(event: string | symbol, listener: (...args: any[]) => void): this;
    }
  }

  export default dns2;
}
