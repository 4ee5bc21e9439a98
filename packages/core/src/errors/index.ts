export type {
  CoreErrorCode,
  KeywardErrorCode,
  KeywardErrorOptions,
  RegisteredErrorCode,
} from './keyward-error.js';
export {
  errorCodes,
  isKeywardError,
  KeywardError,
  registerErrorCodes,
  registeredErrorCode,
} from './keyward-error.js';
