// Preloaded (node --require) into the jsii kernel's node process by components/_speedups.py.
//
// Why: on the Python side, the speed-ups import only the provider submodules we use,
// but the jsii kernel then `require`s @cdktf/provider-aws's lib/index.js, which requires
// all ~2,100 generated JavaScript modules: ~2.5 s of compiling and ~450 MB of memory per
// synth, for a few dozen classes. The kernel finds a class by walking that module's exports
// (`exports.vpc.Vpc` for `@cdktf/provider-aws.vpc.Vpc`), so exports whose getters require
// a submodule on first use give it the same classes, loaded only when asked for.
//
// How: when the kernel requires that index.js, we read it instead of running it. Every
// statement must be one the generator writes (below); each `exports.x = require("./x")`
// becomes a getter. Anything else and we run the real file, and say so on stderr: output
// stays the same, only the speed-up is gone. Setting DYNAMO_ECS_TRACE_PROVIDER_LOADS
// prints one line per submodule loaded (tests/test_provider_seam.py counts them).
"use strict";
const fs = require("fs");
const Module = require("module");
const path = require("path");

const INDEX = /[\\/]@cdktf[\\/]provider-aws[\\/]lib[\\/]index\.js$/;
const SUBMODULE = /^exports\.(\w+) = require\("(\.\/[a-z0-9-]+)"\);$/;
const KNOWN_LINE = [
  /^"use strict";$/,
  /^\/\*\*$/,
  /^ \* .*$/,
  /^ \*\/$/,
  /^\/\/ .*$/,
  /^\/\/# sourceMappingURL=.*$/,
  /^Object\.defineProperty\(exports, "__esModule", \{ value: true \}\);$/,
  /^exports\.\w+ = (exports\.\w+ = )*void 0;$/,
  /^$/,
];
const trace = Boolean(process.env.DYNAMO_ECS_TRACE_PROVIDER_LOADS);

function submodules(source) {
  const found = [];
  for (const line of source.split("\n")) {
    const submodule = SUBMODULE.exec(line);
    if (submodule) {
      found.push({ name: submodule[1], request: submodule[2] });
    } else if (!KNOWN_LINE.some((known) => known.test(line))) {
      return { unexpected: line };
    }
  }
  return { found };
}

function lazyIndex(filename, parent) {
  const { found, unexpected } = submodules(fs.readFileSync(filename, "utf8"));
  if (!found || found.length === 0) {
    process.stderr.write(
      `dynamo-ecs: ${filename} is not shaped as expected (${JSON.stringify(String(unexpected).slice(0, 80))}); ` +
        "loading every provider module, which makes synth slower\n",
    );
    return undefined;
  }
  const index = new Module(filename, parent);
  index.filename = filename;
  index.paths = Module._nodeModulePaths(path.dirname(filename));
  index.loaded = true;
  Object.defineProperty(index.exports, "__esModule", { value: true });
  for (const { name, request } of found) {
    Object.defineProperty(index.exports, name, {
      enumerable: true,
      configurable: true,
      get() {
        const value = index.require(request);
        Object.defineProperty(index.exports, name, { value, enumerable: true, writable: true, configurable: true });
        if (trace) process.stderr.write(`provider submodule loaded: ${name}\n`);
        return value;
      },
    });
  }
  return index;
}

const realLoad = Module._load;
Module._load = function load(request, parent, isMain) {
  // The kernel requires the package by its resolved path; skip resolving anything else.
  if (typeof request !== "string" || !request.includes("provider-aws")) {
    return realLoad.apply(this, arguments);
  }
  let filename;
  try {
    filename = Module._resolveFilename(request, parent, isMain);
  } catch {
    return realLoad.apply(this, arguments);
  }
  if (!INDEX.test(filename) || Module._cache[filename]) {
    return realLoad.apply(this, arguments);
  }
  const index = lazyIndex(filename, parent);
  if (!index) {
    return realLoad.apply(this, arguments);
  }
  Module._cache[filename] = index;
  return index.exports;
};
