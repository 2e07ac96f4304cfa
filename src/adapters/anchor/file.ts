/**
 * The file adapter: one JSON line per anchored checkpoint, appended and
 * fsynced. For offline nodes and tests; it proves only what the file proves.
 */
import { fs, path } from '../../runtime/fs.ts';
import { anchorPayload, toHex, type AnchorAdapter, type AnchorReceiptRow, type CheckpointRef, type Confirmation, type Submission } from './adapter.ts';

export function fileAnchor(file: string): AnchorAdapter {
  const read = (): Array<{ size: number; payload: string }> => {
    try {
      return fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as { size: number; payload: string });
    } catch {
      return [];
    }
  };
  return {
    chain: 'file',
    adapter: 'file',
    async anchor(cp: CheckpointRef): Promise<Submission> {
      const payload = toHex(anchorPayload(cp));
      const line = `${JSON.stringify({ size: cp.size, payload, ts: new Date().toISOString() })}\n`;
      fs.mkdirSync(path.dirname(file), { recursive: true });
      const fd = fs.openSync(file, 'a', 0o644);
      try {
        fs.writeSync(fd, line);
        fs.fsyncSync(fd);
      } finally {
        fs.closeSync(fd);
      }
      return { tx: payload, confirmed: { block: null, confirmations: 1 } };
    },
    async confirm(): Promise<Confirmation> {
      return { state: 'confirmed', block: null, confirmations: 1 };
    },
    async verify(row: AnchorReceiptRow, cp: CheckpointRef): Promise<boolean> {
      const payload = toHex(anchorPayload(cp));
      return row.tx === payload && read().some((l) => l.size === cp.size && l.payload === payload);
    },
  };
}
