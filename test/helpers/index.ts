/** Re-exports every test helper. */
export * from './ports';
export * from './procs';
export * from './grpc';
export * from './servers';
export * from './etcdctl';
export * from "./wal";
export * from "./compare";
