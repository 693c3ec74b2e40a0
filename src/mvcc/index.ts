/** Public surface of the MVCC store (layout: src/mvcc/LAYOUT.md). */
export { MvccStore, isTxnReadonly } from './store';
export type { MvccStoreOptions, PutResult, DeleteRangeResult, RangeResponseResult, TxnResult, CompactResult, LeaseGrantResult, LeaseRevokeResult } from './store';
export { MvccReader } from './reader';
export type { HeaderIdentity } from './reader';
export { openMvccEnv, MVCC_SUBDIR } from './env';
export type { MvccMeta, MvccDbs, LeaseRecord, MvccEnvOptions } from './env';
export { SortOrder, SortTarget } from './range';
export { CompareResult, CompareTarget } from './compare';
