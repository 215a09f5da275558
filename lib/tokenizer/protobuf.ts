/**
 * A minimal reader for the protobuf wire format: just enough to walk a serialized message field by
 * field. Schemas live with their callers (see `model-proto.ts`); this file knows only the encoding.
 */

/** Wire types of the protobuf encoding (groups, 3 and 4, are deprecated and rejected). */
export const WireType = {
  Varint: 0,
  Fixed64: 1,
  LengthDelimited: 2,
  Fixed32: 5,
} as const;

/** Thrown when the bytes are not a well-formed protobuf message. */
export class ProtobufError extends Error {
  override name = 'ProtobufError';
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Reads one message (or sub-message) from `bytes[start, end)`. */
export class ProtoReader {
  private pos: number;
  private readonly view: DataView;

  constructor(
    private readonly bytes: Uint8Array,
    start = 0,
    private readonly end = bytes.length,
  ) {
    this.pos = start;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  /** Whether every field of the message has been read. */
  done(): boolean {
    return this.pos >= this.end;
  }

  /** Reads a field key; returns the field number and wire type. */
  readTag(): { field: number; wireType: number } {
    const at = this.pos;
    const key = this.readVarint();
    const field = Math.floor(key / 8);
    const wireType = key % 8;
    if (field === 0) throw new ProtobufError(`field number 0 at byte ${at}`);
    if (wireType === 3 || wireType === 4 || wireType > 5) {
      throw new ProtobufError(`unsupported wire type ${wireType} at byte ${at}`);
    }
    return { field, wireType };
  }

  /**
   * Reads a varint as a JS number. Values above 2^53 lose precision, which is harmless here: every
   * integer this package reads (enums, booleans, lengths) is small, and lengths are range-checked.
   */
  readVarint(): number {
    let result = 0;
    let scale = 1;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw new ProtobufError(`truncated varint at byte ${this.pos}`);
      const b = this.bytes[this.pos++];
      result += (b & 0x7f) * scale;
      if (b < 0x80) return result;
      scale *= 128;
    }
    throw new ProtobufError(`varint longer than 10 bytes at byte ${this.pos}`);
  }

  /** Reads a `bool` field value. */
  readBool(): boolean {
    return this.readVarint() !== 0;
  }

  /** Reads an `int32` / enum field value (negative values arrive as 64-bit two's complement). */
  readInt32(): number {
    const v = this.readVarint();
    return v >= 2 ** 63 ? v - 2 ** 64 : v;
  }

  /** Reads a `float` field value (fixed32, little-endian). */
  readFloat(): number {
    this.need(4);
    const v = this.view.getFloat32(this.pos, true);
    this.pos += 4;
    return v;
  }

  /** Reads a length-delimited field value as a view into the underlying bytes (no copy). */
  readBytes(): Uint8Array {
    const len = this.readLength();
    const out = this.bytes.subarray(this.pos, this.pos + len);
    this.pos += len;
    return out;
  }

  /** Reads a `string` field value; protobuf requires it to be valid UTF-8. */
  readString(): string {
    const at = this.pos;
    const bytes = this.readBytes();
    try {
      return utf8.decode(bytes);
    } catch {
      throw new ProtobufError(`invalid UTF-8 in string field at byte ${at}`);
    }
  }

  /** Returns a reader over an embedded message field value. */
  readMessage(): ProtoReader {
    const len = this.readLength();
    const sub = new ProtoReader(this.bytes, this.pos, this.pos + len);
    this.pos += len;
    return sub;
  }

  /** Skips the value of a field whose tag has just been read. */
  skip(wireType: number): void {
    switch (wireType) {
      case WireType.Varint:
        this.readVarint();
        return;
      case WireType.Fixed64:
        this.need(8);
        this.pos += 8;
        return;
      case WireType.LengthDelimited: {
        const len = this.readLength(); // before reading `pos`, which readLength advances
        this.pos += len;
        return;
      }
      case WireType.Fixed32:
        this.need(4);
        this.pos += 4;
        return;
      default:
        throw new ProtobufError(`unsupported wire type ${wireType} at byte ${this.pos}`);
    }
  }

  /** Throws unless the field just read has the wire type its schema declares. */
  expect(field: number, wireType: number, expected: number): void {
    if (wireType !== expected) {
      throw new ProtobufError(
        `field ${field} has wire type ${wireType}, expected ${expected} (before byte ${this.pos})`,
      );
    }
  }

  private readLength(): number {
    const at = this.pos;
    const len = this.readVarint();
    if (len > this.end - this.pos) {
      throw new ProtobufError(
        `length-delimited field at byte ${at} needs ${len} bytes, only ${this.end - this.pos} left`,
      );
    }
    return len;
  }

  private need(n: number): void {
    if (this.end - this.pos < n) {
      throw new ProtobufError(`truncated fixed-width value at byte ${this.pos}`);
    }
  }
}
