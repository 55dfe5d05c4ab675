// Every Element Plus component a template uses is installed (src/element.js installs only
// those it names, so that the rest of the library stays out of the bundle): a missing one
// would render as an unknown tag on a page no browser test happens to open.
import { readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'

const SRC = new URL('../src/', import.meta.url).pathname

function vueFiles(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? vueFiles(join(dir, e.name)) : e.name.endsWith('.vue') ? [join(dir, e.name)] : [])
}

const pascal = (tag) => tag.split('-').map((w) => w[0].toUpperCase() + w.slice(1)).join('')

// the names in element.js's ``export const <name> = { ... }``
function exported(name) {
  const text = readFileSync(join(SRC, 'element.js'), 'utf8')
  const block = text.match(new RegExp(`export const ${name} = \\{([^}]*)\\}`))[1]
  return new Set(block.split(',').map((s) => s.trim()).filter(Boolean))
}

const installed = () => exported('components')

describe('the Element Plus components installed', () => {
  it('include every <el-…> tag of every template', () => {
    const used = new Set()
    for (const file of vueFiles(SRC)) {
      for (const [, tag] of readFileSync(file, 'utf8').matchAll(/<(el-[a-z-]+)/g)) used.add(pascal(tag))
    }
    const have = installed()
    expect(used.size).toBeGreaterThan(10)
    expect([...used].filter((c) => !have.has(c))).toEqual([])
  })

  it('bring their own styles, and only theirs (not the whole library stylesheet)', () => {
    const text = readFileSync(join(SRC, 'element.js'), 'utf8')
    const kebab = (name) => name.slice(2).replace(/[A-Z]/g, (c, i) => (i ? '-' : '') + c.toLowerCase())
    const styled = new Set([...text.matchAll(/components\/([a-z-]+)\/style\/css\.mjs'/g)].map((m) => m[1]))
    const missing = [...installed(), ...exported('plugins')].map(kebab).filter((c) => !styled.has(c))
    expect(missing).toEqual([])
    for (const file of [...vueFiles(SRC), join(SRC, 'main.js')]) {
      expect(readFileSync(file, 'utf8')).not.toMatch(/element-plus\/dist\/index\.css/)
    }
  })

  it('are imported from their own modules, never from the library index', () => {
    for (const file of [...vueFiles(SRC), join(SRC, 'element.js'), join(SRC, 'main.js')]) {
      expect(readFileSync(file, 'utf8')).not.toMatch(/from 'element-plus'/)
    }
  })
})
