// File: clientlib/node/tools/install.js
//
// `npm install` of the package builds the addon with CMake (CMakeLists.txt
// next to package.json, in its standalone mode) into build/modelpool.node.
// The client library comes from $MODELPOOL_BUILD_DIR (a modelpool build
// tree), else pkg-config (an installed prefix), else from the project's
// sources around this package. Nothing is downloaded: node-addon-api comes
// from node_modules (npm) or Debian's node-addon-api package, node's
// headers from next to the running node.
'use strict';

const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const pkg = path.resolve(__dirname, '..');
const build = path.join(pkg, 'build');

function run(cmd, args) {
  const r = spawnSync(cmd, args, { stdio: 'inherit', cwd: pkg });
  if (r.error) throw new Error(`modelpool: cannot run ${cmd}: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`modelpool: ${cmd} ${args.join(' ')} failed (${r.status})`);
}

function has(cmd) {
  return spawnSync(cmd, ['--version'], { stdio: 'ignore' }).status === 0;
}

function main() {
  if (process.env.MODELPOOL_NODE_ADDON) {
    console.log(`modelpool: using MODELPOOL_NODE_ADDON=${process.env.MODELPOOL_NODE_ADDON}`);
    return;
  }
  if (!has('cmake')) {
    throw new Error('modelpool: building the addon needs cmake (and a C++20 compiler)');
  }
  const args = ['-S', pkg, '-B', build, '-DCMAKE_BUILD_TYPE=Release',
                `-DMODELPOOL_NODE_EXECUTABLE=${process.execPath}`];
  if (!fs.existsSync(path.join(build, 'CMakeCache.txt')) && has('ninja')) args.push('-G', 'Ninja');
  run('cmake', args);
  run('cmake', ['--build', build, '--target', 'modelpool_node', '--parallel']);
  console.log(`modelpool: built ${path.join(build, 'modelpool.node')}`);
}

try {
  main();
} catch (e) {
  console.error(e.message);
  process.exit(1);
}
