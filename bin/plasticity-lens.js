#!/usr/bin/env node
// Runs the built command line (npm install builds it into out/).
const { main } = require('../out/extension/cli/main.js');
main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
