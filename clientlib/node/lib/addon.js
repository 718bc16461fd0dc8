// File: clientlib/node/lib/addon.js
//
// Finds and loads the compiled addon, modelpool.node:
//   $MODELPOOL_NODE_ADDON                    when set, that file and no other
//   <package>/build/modelpool.node           built by `npm install` (tools/install.js)
//   $MODELPOOL_BUILD_DIR/clientlib/node/     built by the project's CMake build
'use strict';

const fs = require('node:fs');
const path = require('node:path');
const { ModelpoolError } = require('./errors');

function candidates() {
  if (process.env.MODELPOOL_NODE_ADDON) return [process.env.MODELPOOL_NODE_ADDON];
  const out = [path.join(__dirname, '..', 'build', 'modelpool.node')];
  if (process.env.MODELPOOL_BUILD_DIR) {
    out.push(path.join(process.env.MODELPOOL_BUILD_DIR, 'clientlib', 'node', 'modelpool.node'));
  }
  return out;
}

function load() {
  const tried = candidates();
  const found = tried.find((p) => fs.existsSync(p));
  if (!found) {
    throw new Error(`modelpool: no compiled addon (tried ${tried.join(', ')}); ` +
                    'run `npm install` in the package, or set MODELPOOL_BUILD_DIR to a build tree');
  }
  const addon = require(path.resolve(found));
  addon.init(ModelpoolError);
  return addon;
}

module.exports = load();
