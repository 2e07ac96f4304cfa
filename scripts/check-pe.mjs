// Structure check of the Windows single executable, for machines where wine
// cannot run it: PE32+ for x86-64, the SEA fuse flipped, and a NODE_SEA_BLOB
// resource present.
import { readFileSync } from 'node:fs';

const file = process.argv[2] ?? 'dist/nexus-win-x64.exe';
const b = readFileSync(file);
const fail = (m) => {
  console.error(`${file}: ${m}`);
  process.exit(1);
};
if (b.toString('latin1', 0, 2) !== 'MZ') fail('no MZ header');
const pe = b.readUInt32LE(0x3c);
if (b.toString('latin1', pe, pe + 4) !== 'PE\0\0') fail('no PE signature');
if (b.readUInt16LE(pe + 4) !== 0x8664) fail('machine is not x86-64');
if (b.readUInt16LE(pe + 24) !== 0x20b) fail('optional header is not PE32+');
const fuse = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';
if (!b.includes(Buffer.from(`${fuse}:1`))) fail('SEA fuse not flipped');
if (!b.includes(Buffer.from('NODE_SEA_BLOB', 'utf16le'))) fail('no NODE_SEA_BLOB resource');
console.log(`${file}: PE32+ x86-64, SEA fuse flipped, NODE_SEA_BLOB present (${(b.length / 1e6).toFixed(1)} MB)`);
