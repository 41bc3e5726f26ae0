/**
 * Frames on the wire: JSON in text frames, or (`format: "msgpack"`) the same
 * maps in MessagePack binary frames. `@msgpack/msgpack` is an optional peer
 * dependency, loaded only when a socket asks for MessagePack.
 * @module
 */

/** How a socket's messages are encoded (`?format=`). */
export type Format = "json" | "msgpack";

/** Turns messages into frames and back. */
export interface Codec {
  readonly format: Format;
  /** The frame for `msg` (a string for JSON, bytes for MessagePack). */
  encode(msg: object): string | Uint8Array;
  /** The message in a received frame; throws on a frame it cannot read. */
  decode(data: unknown): unknown;
}

const json: Codec = {
  format: "json",
  encode: (m) => JSON.stringify(m),
  decode: (data) => {
    if (typeof data !== "string") throw new Error("binary frame on a JSON socket");
    return JSON.parse(data);
  },
};

/**
 * The codec for `format`; MessagePack's module is imported on first use.
 * @throws when `format` is `"msgpack"` and `@msgpack/msgpack` is not installed
 */
export async function loadCodec(format: Format): Promise<Codec> {
  if (format === "json") return json;
  let mp: typeof import("@msgpack/msgpack");
  try {
    mp = await import("@msgpack/msgpack");
  } catch (e) {
    throw new Error('format "msgpack" needs the package @msgpack/msgpack', { cause: e });
  }
  return {
    format: "msgpack",
    encode: (m) => mp.encode(m),
    decode: (data) => {
      if (data instanceof ArrayBuffer) return mp.decode(new Uint8Array(data));
      if (ArrayBuffer.isView(data)) return mp.decode(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
      throw new Error("text frame on a MessagePack socket");
    },
  };
}
