// Nexus hot path: SHA-256 (scalar and 4-lane SIMD), RFC 6962 leaf/node hashing,
// Merkle tree levels and exact u64 revenue splits.
//
// No managed objects: everything works on raw linear memory that the host lays
// out above heapBase(). Every function is synchronous and pointer based, so the
// host can reuse one scratch region per call and nothing ever leaks (NOTES.md:
// generated bindings leak on the stub runtime).

const K: usize = memory.data<u32>([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]);

const IV: usize = memory.data<u32>([
  0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
]);

// Scratch: scalar state and schedule, one padded block, SIMD state and schedule.
const STATE: usize = memory.data(32, 16);
const W: usize = memory.data(64 * 4, 16);
const BLOCK: usize = memory.data(64, 16);
const VSTATE: usize = memory.data(8 * 16, 16);
const VW: usize = memory.data(64 * 16, 16);
// One padded block per lane for the 4-lane leaf hashes.
const LANES: usize = memory.data(4 * 64, 16);

/** First byte the host may use for its own buffers (16-byte aligned). */
export function heapBase(): usize {
  return (__heap_base + 15) & ~15;
}

// ---------------------------------------------------------------- scalar SHA-256

@inline function bigEndian(x: u32): u32 {
  return bswap<u32>(x);
}

/** One SHA-256 compression of the 64-byte block at BLOCK into STATE. */
function compressBlock(): void {
  for (let i: usize = 0; i < 16; i++) {
    store<u32>(W + (i << 2), bigEndian(load<u32>(BLOCK + (i << 2))));
  }
  for (let i: usize = 16; i < 64; i++) {
    const w15 = load<u32>(W + ((i - 15) << 2));
    const w2 = load<u32>(W + ((i - 2) << 2));
    const s0 = rotr<u32>(w15, 7) ^ rotr<u32>(w15, 18) ^ (w15 >>> 3);
    const s1 = rotr<u32>(w2, 17) ^ rotr<u32>(w2, 19) ^ (w2 >>> 10);
    store<u32>(W + (i << 2), load<u32>(W + ((i - 16) << 2)) + s0 + load<u32>(W + ((i - 7) << 2)) + s1);
  }
  let a = load<u32>(STATE), b = load<u32>(STATE, 4), c = load<u32>(STATE, 8), d = load<u32>(STATE, 12);
  let e = load<u32>(STATE, 16), f = load<u32>(STATE, 20), g = load<u32>(STATE, 24), h = load<u32>(STATE, 28);
  for (let i: usize = 0; i < 64; i++) {
    const S1 = rotr<u32>(e, 6) ^ rotr<u32>(e, 11) ^ rotr<u32>(e, 25);
    const ch = (e & f) ^ (~e & g);
    const t1 = h + S1 + ch + load<u32>(K + (i << 2)) + load<u32>(W + (i << 2));
    const S0 = rotr<u32>(a, 2) ^ rotr<u32>(a, 13) ^ rotr<u32>(a, 22);
    const maj = (a & b) ^ (a & c) ^ (b & c);
    const t2 = S0 + maj;
    h = g; g = f; f = e; e = d + t1;
    d = c; c = b; b = a; a = t1 + t2;
  }
  store<u32>(STATE, load<u32>(STATE) + a);
  store<u32>(STATE, load<u32>(STATE, 4) + b, 4);
  store<u32>(STATE, load<u32>(STATE, 8) + c, 8);
  store<u32>(STATE, load<u32>(STATE, 12) + d, 12);
  store<u32>(STATE, load<u32>(STATE, 16) + e, 16);
  store<u32>(STATE, load<u32>(STATE, 20) + f, 20);
  store<u32>(STATE, load<u32>(STATE, 24) + g, 24);
  store<u32>(STATE, load<u32>(STATE, 28) + h, 28);
}

/** Copies message bytes [pos, pos+n) of (prefix? ‖ data) to dst. */
@inline function fillBlock(dst: usize, prefix: i32, data: usize, pos: usize, n: usize): void {
  if (prefix < 0) {
    memory.copy(dst, data + pos, n);
  } else if (pos == 0) {
    if (n > 0) {
      store<u8>(dst, <u8>prefix);
      memory.copy(dst + 1, data, n - 1);
    }
  } else {
    memory.copy(dst, data + pos - 1, n);
  }
}

/**
 * SHA-256 of (prefix ‖ data[0..len)) into out (32 bytes); prefix < 0 means no
 * prefix byte. The RFC 6962 leaf hash is prefix 0x00.
 */
function digest(prefix: i32, data: usize, len: usize, out: usize): void {
  memory.copy(STATE, IV, 32);
  const total: usize = len + (prefix < 0 ? 0 : 1);
  let pos: usize = 0;
  while (total - pos >= 64) {
    fillBlock(BLOCK, prefix, data, pos, 64);
    compressBlock();
    pos += 64;
  }
  const rem = total - pos;
  fillBlock(BLOCK, prefix, data, pos, rem);
  store<u8>(BLOCK + rem, 0x80);
  if (rem + 1 > 56) {
    memory.fill(BLOCK + rem + 1, 0, 63 - rem);
    compressBlock();
    memory.fill(BLOCK, 0, 56);
  } else {
    memory.fill(BLOCK + rem + 1, 0, 55 - rem);
  }
  const bits: u64 = <u64>total << 3;
  store<u64>(BLOCK + 56, bswap<u64>(bits));
  compressBlock();
  for (let i: usize = 0; i < 8; i++) {
    store<u32>(out + (i << 2), bigEndian(load<u32>(STATE + (i << 2))));
  }
}

/** SHA-256(data[0..len)) into out. */
export function sha256(data: usize, len: usize, out: usize): void {
  digest(-1, data, len, out);
}

/**
 * RFC 6962 leaf hashes of n entries laid end to end at data; offsets holds n+1
 * u32 byte offsets into data (entry i is [offsets[i], offsets[i+1])). Writes
 * n × 32 bytes at out. Four entries at a time go through the 4-lane SIMD
 * compression (ledger entries differ in length by a few bytes, so the four
 * nearly always take the same number of blocks); simd = 0 forces the scalar
 * path (for benchmarks and differential tests).
 */
export function hashLeaves(data: usize, offsets: usize, n: u32, out: usize, simd: u32): void {
  let i: usize = 0;
  const count = <usize>n;
  if (simd != 0) {
    for (; i + 4 <= count; i += 4) hashFourLeaves(data, offsets + (i << 2), out + (i << 5));
  }
  for (; i < count; i++) {
    const start = load<u32>(offsets + (i << 2));
    const end = load<u32>(offsets + ((i + 1) << 2));
    digest(0x00, data + start, end - start, out + (i << 5));
  }
}

/** RFC 6962 node hash SHA-256(0x01 ‖ left ‖ right) of one pair laid out as left‖right at pair. */
function hashPairScalar(pair: usize, out: usize): void {
  digest(0x01, pair, 64, out);
}

// ---------------------------------------------------------------- 4-lane SIMD SHA-256

@inline function vrotr(x: v128, n: i32): v128 {
  return v128.or(i32x4.shr_u(x, n), i32x4.shl(x, 32 - n));
}

/** Every lane of the SIMD state to the SHA-256 initial value. */
@inline function resetLanes(): void {
  for (let i: usize = 0; i < 8; i++) {
    v128.store(VSTATE + (i << 4), i32x4.splat(load<u32>(IV + (i << 2))));
  }
}

/** Four independent compressions: lane j of VW holds message j's schedule words 0..15. */
function compressLanes(): void {
  for (let i: usize = 16; i < 64; i++) {
    const w15 = v128.load(VW + ((i - 15) << 4));
    const w2 = v128.load(VW + ((i - 2) << 4));
    const s0 = v128.xor(v128.xor(vrotr(w15, 7), vrotr(w15, 18)), i32x4.shr_u(w15, 3));
    const s1 = v128.xor(v128.xor(vrotr(w2, 17), vrotr(w2, 19)), i32x4.shr_u(w2, 10));
    const w = i32x4.add(i32x4.add(v128.load(VW + ((i - 16) << 4)), s0), i32x4.add(v128.load(VW + ((i - 7) << 4)), s1));
    v128.store(VW + (i << 4), w);
  }
  let a = v128.load(VSTATE), b = v128.load(VSTATE, 16), c = v128.load(VSTATE, 32), d = v128.load(VSTATE, 48);
  let e = v128.load(VSTATE, 64), f = v128.load(VSTATE, 80), g = v128.load(VSTATE, 96), h = v128.load(VSTATE, 112);
  for (let i: usize = 0; i < 64; i++) {
    const S1 = v128.xor(v128.xor(vrotr(e, 6), vrotr(e, 11)), vrotr(e, 25));
    const ch = v128.xor(v128.and(e, f), v128.andnot(g, e));
    const k = i32x4.splat(load<u32>(K + (i << 2)));
    const t1 = i32x4.add(i32x4.add(i32x4.add(h, S1), i32x4.add(ch, k)), v128.load(VW + (i << 4)));
    const S0 = v128.xor(v128.xor(vrotr(a, 2), vrotr(a, 13)), vrotr(a, 22));
    const maj = v128.xor(v128.xor(v128.and(a, b), v128.and(a, c)), v128.and(b, c));
    const t2 = i32x4.add(S0, maj);
    h = g; g = f; f = e; e = i32x4.add(d, t1);
    d = c; c = b; b = a; a = i32x4.add(t1, t2);
  }
  v128.store(VSTATE, i32x4.add(v128.load(VSTATE), a));
  v128.store(VSTATE, i32x4.add(v128.load(VSTATE, 16), b), 16);
  v128.store(VSTATE, i32x4.add(v128.load(VSTATE, 32), c), 32);
  v128.store(VSTATE, i32x4.add(v128.load(VSTATE, 48), d), 48);
  v128.store(VSTATE, i32x4.add(v128.load(VSTATE, 64), e), 64);
  v128.store(VSTATE, i32x4.add(v128.load(VSTATE, 80), f), 80);
  v128.store(VSTATE, i32x4.add(v128.load(VSTATE, 96), g), 96);
  v128.store(VSTATE, i32x4.add(v128.load(VSTATE, 112), h), 112);
}

/** Big-endian word w (w ≥ 1) of the 65-byte message 0x01 ‖ pair. */
@inline function nodeWord(pair: usize, w: usize): u32 {
  return bigEndian(load<u32>(pair + (w << 2) - 1));
}

/** Node hashes of the four pairs at in (4 × 64 bytes) into out (4 × 32 bytes). */
function hashFourPairs(inp: usize, out: usize): void {
  resetLanes();
  // Block 1: 0x01 ‖ left ‖ right[0..31).
  const p0 = inp, p1 = inp + 64, p2 = inp + 128, p3 = inp + 192;
  let v = i32x4.splat(0);
  v = i32x4.replace_lane(v, 0, 0x01000000 | (bigEndian(load<u32>(p0)) >>> 8));
  v = i32x4.replace_lane(v, 1, 0x01000000 | (bigEndian(load<u32>(p1)) >>> 8));
  v = i32x4.replace_lane(v, 2, 0x01000000 | (bigEndian(load<u32>(p2)) >>> 8));
  v = i32x4.replace_lane(v, 3, 0x01000000 | (bigEndian(load<u32>(p3)) >>> 8));
  v128.store(VW, v);
  for (let w: usize = 1; w < 16; w++) {
    v = i32x4.replace_lane(v, 0, nodeWord(p0, w));
    v = i32x4.replace_lane(v, 1, nodeWord(p1, w));
    v = i32x4.replace_lane(v, 2, nodeWord(p2, w));
    v = i32x4.replace_lane(v, 3, nodeWord(p3, w));
    v128.store(VW + (w << 4), v);
  }
  compressLanes();
  // Block 2: right[31] ‖ 0x80 ‖ zeros ‖ bit length 520.
  v = i32x4.replace_lane(v, 0, (<u32>load<u8>(p0 + 63) << 24) | 0x800000);
  v = i32x4.replace_lane(v, 1, (<u32>load<u8>(p1 + 63) << 24) | 0x800000);
  v = i32x4.replace_lane(v, 2, (<u32>load<u8>(p2 + 63) << 24) | 0x800000);
  v = i32x4.replace_lane(v, 3, (<u32>load<u8>(p3 + 63) << 24) | 0x800000);
  v128.store(VW, v);
  const zero = i32x4.splat(0);
  for (let w: usize = 1; w < 15; w++) v128.store(VW + (w << 4), zero);
  v128.store(VW + (15 << 4), i32x4.splat(520));
  compressLanes();
  laneDigest(0, out);
  laneDigest(1, out + 32);
  laneDigest(2, out + 64);
  laneDigest(3, out + 96);
}

/** Blocks of the padded message of `total` bytes: the bytes, 0x80, and the 8-byte bit length. */
@inline function paddedBlocks(total: usize): usize {
  return (total + 9 + 63) >> 6;
}

/**
 * Block b of the padded message 0x00 ‖ data[0..len) (total = len + 1 bytes)
 * into dst: the message bytes it covers, then 0x80 right after the last one,
 * zeros, and the bit length in the message's last block.
 */
function leafBlock(dst: usize, data: usize, len: usize, b: usize): void {
  const total = len + 1;
  const start = b << 6;
  let avail: usize = 0;
  if (start < total) avail = min<usize>(total - start, 64);
  fillBlock(dst, 0x00, data, start, avail);
  if (avail < 64) {
    let at = avail;
    if (start + avail == total) store<u8>(dst + at++, 0x80);
    memory.fill(dst + at, 0, 64 - at);
    if (b == paddedBlocks(total) - 1) store<u64>(dst + 56, bswap<u64>(<u64>total << 3));
  }
}

/**
 * Leaf hashes of the four entries whose n+1 offsets start at offsets, into
 * out (4 × 32 bytes). Each lane runs as many blocks as the longest entry; a
 * lane's digest is taken after its own last block, what it computes after
 * that is discarded.
 */
function hashFourLeaves(data: usize, offsets: usize, out: usize): void {
  resetLanes();
  const s0 = <usize>load<u32>(offsets), s1 = <usize>load<u32>(offsets, 4), s2 = <usize>load<u32>(offsets, 8);
  const s3 = <usize>load<u32>(offsets, 12), s4 = <usize>load<u32>(offsets, 16);
  const l0 = s1 - s0, l1 = s2 - s1, l2 = s3 - s2, l3 = s4 - s3;
  const n0 = paddedBlocks(l0 + 1), n1 = paddedBlocks(l1 + 1), n2 = paddedBlocks(l2 + 1), n3 = paddedBlocks(l3 + 1);
  const blocks = max<usize>(max<usize>(n0, n1), max<usize>(n2, n3));
  for (let b: usize = 0; b < blocks; b++) {
    // A lane past its last block hashes zeros (its digest is already out).
    if (b < n0) leafBlock(LANES, data + s0, l0, b); else memory.fill(LANES, 0, 64);
    if (b < n1) leafBlock(LANES + 64, data + s1, l1, b); else memory.fill(LANES + 64, 0, 64);
    if (b < n2) leafBlock(LANES + 128, data + s2, l2, b); else memory.fill(LANES + 128, 0, 64);
    if (b < n3) leafBlock(LANES + 192, data + s3, l3, b); else memory.fill(LANES + 192, 0, 64);
    let v = i32x4.splat(0);
    for (let w: usize = 0; w < 16; w++) {
      v = i32x4.replace_lane(v, 0, bigEndian(load<u32>(LANES + (w << 2))));
      v = i32x4.replace_lane(v, 1, bigEndian(load<u32>(LANES + 64 + (w << 2))));
      v = i32x4.replace_lane(v, 2, bigEndian(load<u32>(LANES + 128 + (w << 2))));
      v = i32x4.replace_lane(v, 3, bigEndian(load<u32>(LANES + 192 + (w << 2))));
      v128.store(VW + (w << 4), v);
    }
    compressLanes();
    if (b == n0 - 1) laneDigest(0, out);
    if (b == n1 - 1) laneDigest(1, out + 32);
    if (b == n2 - 1) laneDigest(2, out + 64);
    if (b == n3 - 1) laneDigest(3, out + 96);
  }
}

/** Lane j of the SIMD state as a 32-byte digest at out (lane j of state word i is bytes 4i..4i+4 of digest j). */
function laneDigest(j: u8, out: usize): void {
  for (let i: usize = 0; i < 8; i++) {
    const s = v128.load(VSTATE + (i << 4));
    let word: u32;
    if (j == 0) word = i32x4.extract_lane(s, 0);
    else if (j == 1) word = i32x4.extract_lane(s, 1);
    else if (j == 2) word = i32x4.extract_lane(s, 2);
    else word = i32x4.extract_lane(s, 3);
    store<u32>(out + (i << 2), bigEndian(word));
  }
}

/**
 * Node hashes of count adjacent pairs: pair i is the 64 bytes at inp + 64i,
 * its parent goes to out + 32i. out may equal inp (a level is reduced in place:
 * each group of four pairs is read whole before its parents are written, and
 * parents land at or before the bytes already consumed). simd = 0 forces the
 * scalar path (for benchmarks and differential tests).
 */
export function hashPairs(inp: usize, count: u32, out: usize, simd: u32): void {
  let i: usize = 0;
  const n = <usize>count;
  if (simd != 0) {
    for (; i + 4 <= n; i += 4) hashFourPairs(inp + (i << 6), out + (i << 5));
  }
  for (; i < n; i++) hashPairScalar(inp + (i << 6), out + (i << 5));
}

/**
 * RFC 6962 root of the n node hashes at nodes (32 bytes each), reduced level by
 * level in place: pairs are hashed and an unpaired last node is carried up
 * unchanged, which is the same tree as splitting at the largest power of two
 * below n. Writes the root to out; nodes is clobbered. n must be ≥ 1.
 */
export function merkleRoot(nodes: usize, n: u32, out: usize, simd: u32): void {
  let m = n;
  while (m > 1) {
    const pairs = m >> 1;
    hashPairs(nodes, pairs, nodes, simd);
    if (m & 1) memory.copy(nodes + (<usize>pairs << 5), nodes + (<usize>(m - 1) << 5), 32);
    m = pairs + (m & 1);
  }
  memory.copy(out, nodes, 32);
}

// ---------------------------------------------------------------- splits

/**
 * Splits n u64 amounts (little-endian at amounts) into creator / pool / fee by
 * basis points c and p (c + p ≤ 10000): share = q × bp + (r × bp) / 10000 with
 * q, r = amount divmod 10000, which never overflows u64. The fee takes the dust.
 * Writes 3 u64 per amount at out (creator, pool, fee). Returns 0, or i + 1 for
 * the first amount whose shares fail creator + pool + fee == amount.
 */
export function splitAmounts(amounts: usize, n: u32, c: u32, p: u32, out: usize): u32 {
  const bc = <u64>c, bp = <u64>p;
  for (let i: usize = 0; i < <usize>n; i++) {
    const a = load<u64>(amounts + (i << 3));
    const q = a / 10000, r = a % 10000;
    const creator = q * bc + (r * bc) / 10000;
    const pool = q * bp + (r * bp) / 10000;
    const fee = a - creator - pool;
    const o = out + i * 24;
    store<u64>(o, creator);
    store<u64>(o, pool, 8);
    store<u64>(o, fee, 16);
    // Unsigned wrap would show up here: the three parts must add back exactly
    // and none may exceed the whole.
    if (creator > a || pool > a || fee > a || creator + pool + fee != a) return <u32>(i + 1);
  }
  return 0;
}
