/** wsvia's public API. */
export { runDoctor, type DoctorOptions } from './doctor/run-doctor.js';
export {
  reportToJSON,
  STEP_NAMES,
  type DoctorReport,
  type DoctorStep,
  type IdleResult,
  type StepName,
} from './doctor/report.js';
export { formatReport } from './doctor/format-report.js';
