export type { KeywardErrorCode, KeywardErrorOptions } from './keyward-error.js';
export { errorCodes, isKeywardError, KeywardError } from './keyward-error.js';
