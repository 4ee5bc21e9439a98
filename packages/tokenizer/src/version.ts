/** Kept in step with package.json; a constant, so the bundled CLI in an image needs no package.json. */
export const VERSION = '0.1.0';
