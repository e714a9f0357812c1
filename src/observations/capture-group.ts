/**
 * Kheish's capture-group check at upload (`validate_capture_group_metadata`): only for metadata
 * of schema `kheish.macos.capture.v1` with a non-blank string `capture_group_id` on a source whose
 * id starts with `macos-`: `metadata.machine_id` must be set, the source id must start with
 * `macos-<machine_id>-` and the group id with `<machine_id>-`. Kheish answers a failure with a
 * 500; here it is a field problem (validation_failed, 400). Returns the problems.
 */
export function captureGroupProblems(
  sourceId: string,
  metadata: Record<string, unknown> | null | undefined,
): Array<{ path: string; message: string }> {
  if (metadata?.schema !== 'kheish.macos.capture.v1') return [];
  const group = metadata.capture_group_id;
  if (typeof group !== 'string' || group.trim() === '' || !sourceId.startsWith('macos-')) return [];
  const machine = metadata.machine_id;
  if (typeof machine !== 'string' || machine.trim() === '') {
    return [{ path: 'metadata.machine_id', message: 'is required with a macOS capture_group_id' }];
  }
  const problems: Array<{ path: string; message: string }> = [];
  if (!sourceId.startsWith(`macos-${machine}-`)) {
    problems.push({ path: 'metadata.machine_id', message: `source ${sourceId} does not belong to machine ${machine}` });
  }
  if (!group.startsWith(`${machine}-`)) {
    problems.push({ path: 'metadata.capture_group_id', message: `capture group ${group} does not belong to machine ${machine}` });
  }
  return problems;
}
