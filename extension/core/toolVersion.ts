// Kept equal to package.json's version (a unit test checks it), so bundles need no JSON import.
export const TOOL_VERSION = '0.1.0';
