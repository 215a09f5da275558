/** The BIO label scheme: entity types, the label list a model is trained on, and tag parsing. */

/** The ten KMOU entity types, in the order their labels are numbered. */
export const ENTITY_TYPES = [
  'PER',
  'LOC',
  'ORG',
  'POH',
  'DAT',
  'TIM',
  'DUR',
  'MNY',
  'PNT',
  'NOH',
] as const;

/** One of the ten KMOU entity types. */
export type EntityType = (typeof ENTITY_TYPES)[number];

/** A label list and its lookups: `O` first (id 0), then `B-X`, `I-X` for each type in order. */
export interface LabelScheme {
  /** Entity types, in label order. */
  readonly types: readonly string[];
  /** Labels by id. */
  readonly labels: readonly string[];
  /** Id of each label. */
  readonly label2id: Readonly<Record<string, number>>;
}

/** A parsed BIO tag: `O`, or a `B`/`I` prefix with its entity type. */
export type ParsedTag = { prefix: 'O' } | { prefix: 'B' | 'I'; type: string };

/** A maximal run of tags that forms one entity: items `first..last` inclusive. */
export interface BioChunk {
  type: string;
  first: number;
  last: number;
}

/**
 * Builds the scheme for a list of entity types (for corpora other than KMOU).
 * Types must be unique, non-empty and free of whitespace.
 */
export function createLabelScheme(types: readonly string[]): LabelScheme {
  const seen = new Set<string>();
  for (const type of types) {
    if (!/^[^\s]+$/.test(type)) throw new Error(`invalid entity type ${JSON.stringify(type)}`);
    if (seen.has(type)) throw new Error(`duplicate entity type ${JSON.stringify(type)}`);
    seen.add(type);
  }
  const labels = ['O', ...types.flatMap((type) => [`B-${type}`, `I-${type}`])];
  const label2id: Record<string, number> = Object.create(null) as Record<string, number>;
  labels.forEach((label, id) => (label2id[label] = id));
  return Object.freeze({
    types: Object.freeze([...types]),
    labels: Object.freeze(labels),
    label2id: Object.freeze(label2id),
  });
}

/** The KMOU scheme: 21 labels. */
export const KMOU_SCHEME: LabelScheme = createLabelScheme(ENTITY_TYPES);

/** The canonical KMOU label list: `O`, `B-PER`, `I-PER`, `B-LOC`, …, `I-NOH`. */
export const LABELS: readonly string[] = KMOU_SCHEME.labels;

/** Id of each canonical KMOU label. */
export const LABEL2ID: Readonly<Record<string, number>> = KMOU_SCHEME.label2id;

/**
 * Parses a BIO tag. Returns `null` for anything that is not `O`, `B-TYPE` or `I-TYPE`
 * (TYPE non-empty, no whitespace); callers turn that into an error with their own context.
 */
export function parseTag(tag: string): ParsedTag | null {
  if (tag === 'O') return { prefix: 'O' };
  const match = /^([BI])-([^\s]+)$/.exec(tag);
  if (!match) return null;
  return { prefix: match[1] as 'B' | 'I', type: match[2] };
}

/**
 * Groups parsed BIO tags into entity chunks.
 *
 * An `I-X` that follows `O` or a tag of another type starts a new entity, as conlleval
 * does: dropping it would lose the model's evidence for an entity, and a stray `I-` is far
 * more often a missed `B-` than noise.
 */
export function chunkBio(tags: readonly ParsedTag[]): BioChunk[] {
  const chunks: BioChunk[] = [];
  let current: BioChunk | null = null;
  tags.forEach((tag, index) => {
    if (tag.prefix === 'O') {
      current = null;
    } else if (tag.prefix === 'B' || current === null || current.type !== tag.type) {
      current = { type: tag.type, first: index, last: index };
      chunks.push(current);
    } else {
      current.last = index;
    }
  });
  return chunks;
}
