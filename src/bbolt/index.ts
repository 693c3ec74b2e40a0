/** bbolt database files: format constants, a streaming writer and a page-at-a-time reader (no project imports). */
export * from './format';
export * from './writer';
export * from './reader';
