/**
 * Who is reading: the admin token (or a loopback daemon without one) or the read-only token.
 * The domain decides what each may see (sensitive asset content, run input and output); the
 * HTTP layer only says which one is asking.
 */
export type Reader = 'admin' | 'readonly';
