/**
 * The RFC 6962 tree over the ledger, stored so that a proof costs O(log n)
 * reads: every complete interior node (level, index) from STORED_FROM_LEVEL up
 * is a row of tree_nodes, leaves are the entries' leaf hashes, and a node in
 * between is hashed from its leaves (at most 8, one range read) when a proof
 * needs it. New nodes are built by the WASM hot path (SIMD pair hashing)
 * inside the same transaction that commits the leaves, and `repair()`
 * integrates any leaves a crash left behind.
 */
import { hashPairs, merkleRoot } from '../hotpath/hotpath.ts';
import { sha256 } from '../runtime/crypto.ts';
import { equalBytes } from '../runtime/encoding.ts';
import type { Database, Statement } from '../vault/sqlite.ts';
import type { Vault } from '../vault/vault.ts';

const EMPTY_ROOT = sha256(new Uint8Array(0));

/**
 * The lowest level of interior nodes kept in tree_nodes. Levels 1–3 were 7 of
 * every 8 rows, each inserted into the B-tree as its group commits: ~2 µs of
 * the event loop per booked event (bench/commit.ts --group 8 --batch 100, 6
 * alternating pairs), for nodes a proof can rebuild from 8 leaves it reads in
 * one step. Changing it needs a migration (vault.ts, 6).
 */
export const STORED_FROM_LEVEL = 4;

/** Largest power of two strictly below n (n ≥ 2). */
function splitPoint(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

export class MerkleTree {
  readonly #vault: Vault;
  readonly #nodeGet: Statement;
  readonly #nodePut: Statement;
  readonly #sizeSet: Statement;
  #size: number;

  constructor(vault: Vault) {
    this.#vault = vault;
    const db: Database = vault.database;
    this.#nodeGet = db.prepare('SELECT hash FROM tree_nodes WHERE level = ? AND idx = ?');
    this.#nodePut = db.prepare('INSERT INTO tree_nodes (level, idx, hash) VALUES (?, ?, ?)');
    this.#sizeSet = db.prepare("UPDATE meta SET value = ? WHERE key = 'tree_size'");
    this.#size = Number(vault.meta('tree_size') ?? '0');
  }

  /** Leaves integrated into the tree. */
  get size(): number {
    return this.#size;
  }

  /**
   * Adds the leaves [size, size + count) — given as 32-byte hashes laid end to
   * end — and stores every interior node they complete. Must run inside the
   * transaction that commits those leaves (or repair()).
   */
  integrate(leaves: Uint8Array, count: number): void {
    if (count === 0) return;
    const oldSize = this.#size;
    const newSize = oldSize + count;
    let level = 0;
    let start = oldSize; // index of the first new node at this level
    let nodes = leaves; // hashes of nodes [start, start + len) at this level
    for (;;) {
      const total = Math.floor(newSize / 2 ** level); // complete nodes at this level
      const pStart = Math.floor(start / 2);
      const pEnd = Math.floor(total / 2);
      if (pStart >= pEnd) break;
      // Children 2·pStart … 2·pEnd−1; the first may be an old node.
      const pairs = new Uint8Array((pEnd - pStart) * 64);
      let offset = 0;
      if (start % 2 === 1) {
        pairs.set(this.node(level, start - 1), 0);
        offset = 32;
      }
      pairs.set(nodes.subarray(0, (2 * pEnd - start) * 32), offset);
      const parents = hashPairs(pairs, pEnd - pStart);
      if (level + 1 >= STORED_FROM_LEVEL) {
        for (let i = 0; i < pEnd - pStart; i++) this.#nodePut.run(level + 1, pStart + i, parents.subarray(i * 32, i * 32 + 32));
      }
      nodes = parents;
      start = pStart;
      level++;
    }
    this.#vault.onRollback(() => {
      this.#size = oldSize;
    });
    this.#size = newSize;
    this.#sizeSet.run(String(newSize));
  }

  /** Integrates ledger rows the tree does not cover yet (after a crash between commit and tree update). */
  repair(): number {
    const behind = this.#vault.size - this.#size;
    if (behind <= 0) return 0;
    this.#vault.transaction(() => {
      for (let from = this.#size; from < this.#vault.size; from += 65536) {
        const to = Math.min(from + 65536, this.#vault.size);
        this.integrate(this.#vault.leaves(from, to), to - from);
      }
    });
    return behind;
  }

  /**
   * A complete node of the tree (over leaves it has integrated, stored or
   * not): level 0 is a leaf; below STORED_FROM_LEVEL, the root of its leaves.
   */
  node(level: number, index: number): Uint8Array {
    let hash: Uint8Array | undefined;
    if (level >= STORED_FROM_LEVEL) hash = this.#nodeGet.get((s) => s.blob(0), level, index);
    else {
      const width = 2 ** level;
      if ((index + 1) * width <= this.#size) {
        const leaves = this.#vault.leaves(index * width, (index + 1) * width);
        hash = level === 0 ? leaves : merkleRoot(leaves, width);
      }
    }
    if (!hash) throw new Error(`tree node (${level}, ${index}) is missing`);
    return hash;
  }

  /** MTH(D[a:b]) for ranges that occur in RFC 9162 proofs, memoised per call. */
  #subtree(a: number, b: number, memo: Map<string, Uint8Array>): Uint8Array {
    const n = b - a;
    if ((n & (n - 1)) === 0 && a % n === 0) {
      return this.node(Math.log2(n), a / n);
    }
    const key = `${a}:${b}`;
    const hit = memo.get(key);
    if (hit) return hit;
    const k = splitPoint(n);
    const left = this.#subtree(a, a + k, memo);
    const right = this.#subtree(a + k, b, memo);
    const pair = new Uint8Array(64);
    pair.set(left);
    pair.set(right, 32);
    const h = hashPairs(pair, 1);
    memo.set(key, h);
    return h;
  }

  /** The root of the tree of the first `size` leaves (size ≤ this.size). */
  root(size = this.#size): Uint8Array {
    if (size > this.#size) throw new RangeError(`tree has ${this.#size} leaves, not ${size}`);
    if (size === 0) return EMPTY_ROOT;
    return this.#subtree(0, size, new Map());
  }

  /** RFC 9162 §2.1.3.1 PATH(m, D[0:size]), leaf to root. */
  inclusionProof(m: number, size: number): Uint8Array[] {
    if (!(m >= 0 && m < size && size <= this.#size)) throw new RangeError(`no leaf ${m} in a tree of ${size}`);
    const memo = new Map<string, Uint8Array>();
    const path: Uint8Array[] = [];
    let a = 0;
    let b = size;
    // Walk down, collecting siblings root-first; reverse at the end.
    while (b - a > 1) {
      const k = splitPoint(b - a);
      if (m < a + k) {
        path.push(this.#subtree(a + k, b, memo));
        b = a + k;
      } else {
        path.push(this.#subtree(a, a + k, memo));
        a += k;
      }
    }
    return path.reverse();
  }

  /** RFC 9162 §2.1.4.1 PROOF(m, D[0:n]). */
  consistencyProof(m: number, n: number): Uint8Array[] {
    if (!(m > 0 && m <= n && n <= this.#size)) throw new RangeError(`no consistency proof from ${m} to ${n}`);
    const memo = new Map<string, Uint8Array>();
    const out: Uint8Array[] = [];
    const sub = (mm: number, a: number, b: number, whole: boolean): void => {
      const size = b - a;
      if (mm === size) {
        if (!whole) out.push(this.#subtree(a, b, memo));
        return;
      }
      const k = splitPoint(size);
      if (mm <= k) {
        sub(mm, a, a + k, whole);
        out.push(this.#subtree(a + k, b, memo));
      } else {
        sub(mm - k, a + k, b, false);
        out.push(this.#subtree(a, a + k, memo));
      }
    };
    if (m < n) sub(m, 0, n, true);
    return out;
  }

  /**
   * The offline audit's recomputation: every complete node over the first
   * `count` leaves, level by level. Each node complete within the first
   * `storedSize` leaves, from STORED_FROM_LEVEL up, is compared with the
   * stored one (the first mismatch is returned), and the root of every size
   * in `sizes` (each ≤ count) is folded on the way. A size's root is its
   * perfect subtrees, one per set bit, hashed together right to left — the
   * order the levels come in — so C checkpoints cost one pass plus C·log n
   * hashes, not C passes over the leaves (quadratic for a node that cuts a
   * checkpoint every second).
   */
  static audit(
    leaves: Uint8Array,
    count: number,
    stored: (level: number, index: number) => Uint8Array | undefined,
    options: { storedSize?: number; sizes?: readonly number[] } = {},
  ): { bad?: { level: number; index: number }; roots: Uint8Array[] } {
    const storedSize = Math.min(options.storedSize ?? count, count);
    const sizes = options.sizes ?? [];
    for (const k of sizes) if (!(Number.isSafeInteger(k) && k >= 0 && k <= count)) throw new RangeError(`no root of size ${k} over ${count} leaves`);
    const acc = new Uint8Array(sizes.length * 32);
    const started = new Uint8Array(sizes.length);
    let bad: { level: number; index: number } | undefined;
    let nodes = leaves.subarray(0, count * 32);
    let n = count;
    for (let level = 0; n >= 1; level++) {
      const scale = 2 ** level;
      // Sizes with bit `level` set: their subtree here is node units − 1.
      const folding: Array<{ c: number; at: number }> = [];
      for (let c = 0; c < sizes.length; c++) {
        const units = Math.floor(sizes[c]! / scale);
        if (units % 2 === 0) continue;
        const at = (units - 1) * 32;
        if (started[c]) folding.push({ c, at });
        else {
          acc.set(nodes.subarray(at, at + 32), c * 32);
          started[c] = 1;
        }
      }
      if (folding.length > 0) {
        const pairs = new Uint8Array(folding.length * 64);
        folding.forEach(({ c, at }, i) => {
          pairs.set(nodes.subarray(at, at + 32), i * 64);
          pairs.set(acc.subarray(c * 32, c * 32 + 32), i * 64 + 32);
        });
        const parents = hashPairs(pairs, folding.length);
        folding.forEach(({ c }, i) => acc.set(parents.subarray(i * 32, i * 32 + 32), c * 32));
      }
      if (n < 2) break;
      const half = Math.floor(n / 2);
      const parents = hashPairs(nodes, half);
      if (!bad && level + 1 >= STORED_FROM_LEVEL) {
        const checked = Math.min(half, Math.floor(storedSize / (scale * 2)));
        for (let i = 0; i < checked; i++) {
          const s = stored(level + 1, i);
          if (!s || !equalBytes(s, parents.subarray(i * 32, i * 32 + 32))) {
            bad = { level: level + 1, index: i };
            break;
          }
        }
      }
      nodes = parents;
      n = half;
    }
    const roots = sizes.map((k, c) => (k === 0 ? EMPTY_ROOT : acc.slice(c * 32, c * 32 + 32)));
    return { ...(bad ? { bad } : {}), roots };
  }
}
