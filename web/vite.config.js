// Vite builds the site into the gateway's static folder (gitignored); the gateway serves
// it at / and /assets/. Nothing is loaded from elsewhere at run time.
import { fileURLToPath } from 'node:url'
import vue from '@vitejs/plugin-vue'
import { defineConfig } from 'vite'

export default defineConfig({
  plugins: [vue()],
  base: '/',
  build: {
    outDir: fileURLToPath(new URL('../services/gateway/static/site', import.meta.url)),
    emptyOutDir: true,
    assetsDir: 'assets',
    // no inline <script>/<style>: the gateway's Content-Security-Policy forbids them
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    chunkSizeWarningLimit: 1500,
  },
  server: { proxy: { '/api': 'http://127.0.0.1:8000', '/verify': 'http://127.0.0.1:8000' } },
  test: { include: ['tests/**/*.test.js'], environment: 'node' },
})
