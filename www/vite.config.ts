import { defineConfig, type Plugin } from 'vite';
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync, constants } from 'node:zlib';

/** Emits sw.js with every file of the build to precache, and a version from their hashes. */
function serviceWorker(): Plugin {
  return {
    name: 'likeness-service-worker',
    apply: 'build',
    generateBundle(_options, bundle) {
      const files = Object.keys(bundle).filter((f) => !f.endsWith('.map'));
      const publicFiles = ['manifest.webmanifest', 'icon.svg', 'icon-192.png', 'icon-512.png'];
      const precache = ['./', ...publicFiles, ...files.filter((f) => f !== 'index.html')].map((f) => (f === './' ? f : `./${f}`));
      const version = createHash('sha256').update(files.sort().join('\n')).digest('hex').slice(0, 12);
      const source = readFileSync(new URL('./sw.template.js', import.meta.url), 'utf8')
        .replace('__VERSION__', JSON.stringify(version))
        .replace('__PRECACHE__', JSON.stringify(precache));
      this.emitFile({ type: 'asset', fileName: 'sw.js', source });
    },
  };
}

/**
 * Writes `FILE.gz` beside every file that compresses by a tenth or more (the engine's .wasm:
 * about 4x), which the server sends to browsers that accept gzip: no compression per request.
 */
function precompress(): Plugin {
  let outDir = 'dist';
  return {
    name: 'likeness-precompress',
    apply: 'build',
    configResolved(config) {
      outDir = config.build.outDir;
    },
    writeBundle() {
      const walk = (dir: string): string[] =>
        readdirSync(dir).flatMap((f) => (statSync(join(dir, f)).isDirectory() ? walk(join(dir, f)) : [join(dir, f)]));
      for (const file of walk(outDir)) {
        if (file.endsWith('.gz') || statSync(file).size < 1024) continue;
        const raw = readFileSync(file);
        const gz = gzipSync(raw, { level: constants.Z_BEST_COMPRESSION });
        if (gz.length < raw.length * 0.9) writeFileSync(`${file}.gz`, gz);
      }
    },
  };
}

export default defineConfig({
  base: './',
  build: { target: 'es2022', assetsInlineLimit: 0, chunkSizeWarningLimit: 2048 },
  worker: { format: 'es' },
  plugins: [serviceWorker(), precompress()],
});
