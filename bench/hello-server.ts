// The ceiling of bench/ingest.ts: the same bare Hono app `nexus bench --ceiling` uses.
import { serveCeiling } from '../src/bench/ceiling.ts';

await serveCeiling();
