/**
 * The parts of SentencePiece's `ModelProto` (sentencepiece_model.proto) that encoding needs, read
 * with the wire-format reader. Fields this package does not use are skipped, as protobuf allows.
 */
import { ProtoReader, ProtobufError, WireType } from './protobuf.js';

/** `ModelProto.SentencePiece.Type`. */
export const PieceType = {
  Normal: 1,
  Unknown: 2,
  Control: 3,
  UserDefined: 4,
  Unused: 5,
  Byte: 6,
} as const;

/** `TrainerSpec.ModelType`. */
export const ModelType = { Unigram: 1, Bpe: 2, Word: 3, Char: 4 } as const;

/** One vocabulary entry of the model, in SentencePiece id order. */
export interface ModelPiece {
  piece: string;
  score: number;
  type: number;
}

/** `NormalizerSpec`, with proto2 defaults applied. */
export interface NormalizerSpec {
  name: string;
  precompiledCharsmap: Uint8Array;
  addDummyPrefix: boolean;
  removeExtraWhitespaces: boolean;
  escapeWhitespaces: boolean;
}

/** The `TrainerSpec` fields that change how text is encoded. */
export interface TrainerSpec {
  modelType: number;
  treatWhitespaceAsSuffix: boolean;
  byteFallback: boolean;
}

/** A parsed `.model` file. */
export interface ModelProto {
  pieces: ModelPiece[];
  trainerSpec: TrainerSpec;
  normalizerSpec: NormalizerSpec;
}

/** Parses a serialized `ModelProto`; throws `ProtobufError` on malformed bytes. */
export function parseModelProto(bytes: Uint8Array): ModelProto {
  const r = new ProtoReader(bytes);
  const pieces: ModelPiece[] = [];
  const trainerSpec = defaultTrainerSpec();
  const normalizerSpec = defaultNormalizerSpec();
  while (!r.done()) {
    const { field, wireType } = r.readTag();
    switch (field) {
      case 1:
        r.expect(field, wireType, WireType.LengthDelimited);
        pieces.push(parsePiece(r.readMessage()));
        break;
      case 2:
        r.expect(field, wireType, WireType.LengthDelimited);
        // A message field that occurs again is merged into the first, as protobuf specifies.
        mergeTrainerSpec(r.readMessage(), trainerSpec);
        break;
      case 3:
        r.expect(field, wireType, WireType.LengthDelimited);
        mergeNormalizerSpec(r.readMessage(), normalizerSpec);
        break;
      default:
        r.skip(wireType);
    }
  }
  if (pieces.length === 0) throw new ProtobufError('the model has no pieces');
  return { pieces, trainerSpec, normalizerSpec };
}

function parsePiece(r: ProtoReader): ModelPiece {
  const out: ModelPiece = { piece: '', score: 0, type: PieceType.Normal };
  while (!r.done()) {
    const { field, wireType } = r.readTag();
    if (field === 1) {
      r.expect(field, wireType, WireType.LengthDelimited);
      out.piece = r.readString();
    } else if (field === 2) {
      r.expect(field, wireType, WireType.Fixed32);
      out.score = r.readFloat();
    } else if (field === 3) {
      r.expect(field, wireType, WireType.Varint);
      const type = r.readInt32();
      // proto2 keeps an unknown enum value out of the field, which then stays NORMAL.
      if (type >= PieceType.Normal && type <= PieceType.Byte) out.type = type;
    } else {
      r.skip(wireType);
    }
  }
  return out;
}

function defaultTrainerSpec(): TrainerSpec {
  return { modelType: ModelType.Unigram, treatWhitespaceAsSuffix: false, byteFallback: false };
}

function mergeTrainerSpec(r: ProtoReader, out: TrainerSpec): void {
  while (!r.done()) {
    const { field, wireType } = r.readTag();
    if (field === 3) {
      r.expect(field, wireType, WireType.Varint);
      out.modelType = r.readInt32();
    } else if (field === 24) {
      r.expect(field, wireType, WireType.Varint);
      out.treatWhitespaceAsSuffix = r.readBool();
    } else if (field === 35) {
      r.expect(field, wireType, WireType.Varint);
      out.byteFallback = r.readBool();
    } else {
      r.skip(wireType);
    }
  }
}

function defaultNormalizerSpec(): NormalizerSpec {
  return {
    name: '',
    precompiledCharsmap: new Uint8Array(0),
    addDummyPrefix: true,
    removeExtraWhitespaces: true,
    escapeWhitespaces: true,
  };
}

function mergeNormalizerSpec(r: ProtoReader, out: NormalizerSpec): void {
  while (!r.done()) {
    const { field, wireType } = r.readTag();
    switch (field) {
      case 1:
        r.expect(field, wireType, WireType.LengthDelimited);
        out.name = r.readString();
        break;
      case 2:
        r.expect(field, wireType, WireType.LengthDelimited);
        out.precompiledCharsmap = r.readBytes();
        break;
      case 3:
        r.expect(field, wireType, WireType.Varint);
        out.addDummyPrefix = r.readBool();
        break;
      case 4:
        r.expect(field, wireType, WireType.Varint);
        out.removeExtraWhitespaces = r.readBool();
        break;
      case 5:
        r.expect(field, wireType, WireType.Varint);
        out.escapeWhitespaces = r.readBool();
        break;
      default:
        r.skip(wireType);
    }
  }
}
