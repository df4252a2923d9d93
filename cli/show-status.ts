import { formatStatus, type StatusDocument } from '../agent/status/status-document.js';
import { ExitCode, type Output } from './output.js';

/** Writes the status (JSON or text) and returns the exit code it means. */
export function showStatus(status: StatusDocument, out: Output): ExitCode {
  out.result(status, () => formatStatus(status));
  return status.enrolled ? ExitCode.ok : ExitCode.notEnrolled;
}
