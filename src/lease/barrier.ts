/**
 * The linearizable read the lessor uses as a barrier: a count-only Range of one key that cannot exist in
 * practice. Once it answers, everything committed before it was issued is applied locally (ReadIndex).
 */
import type { RangeRequest } from '../wire/codec';

/** A count-only, linearizable Range (no key data is read). */
export const EMPTY_RANGE_BARRIER: RangeRequest = {
  key: Buffer.from([0]),
  rangeEnd: Buffer.alloc(0),
  limit: 1,
  revision: 0,
  sortOrder: 0,
  sortTarget: 0,
  serializable: false,
  keysOnly: false,
  countOnly: true,
  minModRevision: 0,
  maxModRevision: 0,
  minCreateRevision: 0,
  maxCreateRevision: 0,
};
