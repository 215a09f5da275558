/**
 * A static trie over UTF-8 byte strings, laid out as a base/check double array in typed arrays so
 * that walking it costs two array reads per byte and allocates nothing.
 */

/** Byte-keyed trie mapping each key to a non-negative integer. */
export class ByteTrie {
  /** `base[s] + b` is the slot of the child of state `s` on byte `b`. */
  readonly base: Int32Array;
  /** `check[t]` is the parent state of slot `t`, or -1 when the slot is free. */
  readonly check: Int32Array;
  /** `value[s]` is the value of the key ending at state `s`, or -1 when no key ends there. */
  readonly value: Int32Array;

  /**
   * Builds the trie. Keys must be distinct and non-empty; a key mapped to a negative value is
   * stored as a path only (it extends to longer keys but never matches itself).
   */
  constructor(keys: readonly Uint8Array[], values: readonly number[]) {
    const root = newNode();
    for (let k = 0; k < keys.length; k++) {
      let node = root;
      for (const b of keys[k]) {
        let child = node.children.get(b);
        if (!child) {
          child = newNode();
          node.children.set(b, child);
        }
        node = child;
      }
      node.value = values[k];
    }

    let capacity = 1024;
    let base = new Int32Array(capacity);
    let check = new Int32Array(capacity).fill(-1);
    let value = new Int32Array(capacity).fill(-1);
    // skip[i] === i for a free slot; otherwise it points towards a later free slot (union-find
    // style, compressed on lookup), so finding the next free slot does not rescan occupied ones.
    let skip = Int32Array.from({ length: capacity }, (_, i) => i);
    const grow = (need: number): void => {
      if (need <= capacity) return;
      const old = capacity;
      while (capacity < need) capacity *= 2;
      const b = new Int32Array(capacity);
      b.set(base);
      const c = new Int32Array(capacity).fill(-1);
      c.set(check);
      const v = new Int32Array(capacity).fill(-1);
      v.set(value);
      const k = new Int32Array(capacity);
      k.set(skip);
      for (let i = old; i < capacity; i++) k[i] = i;
      base = b;
      check = c;
      value = v;
      skip = k;
    };
    const freeFrom = (i: number): number => {
      grow(i + 1);
      let r = i;
      while (skip[r] !== r) {
        r = skip[r];
        grow(r + 1);
      }
      while (skip[i] !== r) {
        const n = skip[i];
        skip[i] = r;
        i = n;
      }
      return r;
    };
    const occupy = (slot: number, parent: number): void => {
      check[slot] = parent;
      skip[slot] = slot + 1;
    };

    occupy(0, -2); // the root occupies slot 0 and is nobody's child
    let used = 1;
    const queue: Array<[TrieNode, number]> = [[root, 0]];
    for (let qi = 0; qi < queue.length; qi++) {
      const [node, state] = queue[qi];
      value[state] = node.value;
      if (node.children.size === 0) continue;
      const labels = [...node.children.keys()].sort((a, b) => a - b);
      // First fit: the smallest base >= 1 at which every child lands on a free slot.
      let slot = freeFrom(labels[0] + 1);
      let b: number;
      for (;;) {
        b = slot - labels[0];
        grow(b + 256);
        let fits = true;
        for (let j = 1; j < labels.length; j++) {
          if (check[b + labels[j]] !== -1) {
            fits = false;
            break;
          }
        }
        if (fits) break;
        slot = freeFrom(slot + 1);
      }
      base[state] = b;
      for (const l of labels) {
        occupy(b + l, state);
        used = Math.max(used, b + l + 1);
        queue.push([node.children.get(l)!, b + l]);
      }
    }

    // Padding of 256 lets a walk index `base[s] + byte` without a bounds check.
    const size = used + 256;
    grow(size);
    this.base = base.slice(0, size);
    this.check = check.slice(0, size);
    this.value = value.slice(0, size);
  }

  /** Length in bytes of the longest key that is a prefix of `input[start, end)`, or 0. */
  longestPrefix(input: Uint8Array, start: number, end: number): number {
    const { base, check, value } = this;
    let state = 0;
    let best = 0;
    for (let i = start; i < end; i++) {
      const next = base[state] + input[i];
      if (check[next] !== state) break;
      state = next;
      if (value[state] >= 0) best = i + 1 - start;
    }
    return best;
  }
}

interface TrieNode {
  children: Map<number, TrieNode>;
  value: number;
}

function newNode(): TrieNode {
  return { children: new Map(), value: -1 };
}
