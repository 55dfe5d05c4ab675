// Hash history (/#/apply): the gateway serves one page at / and nothing else needs to know
// the site's paths. Each area keeps its own route list; the guard sends people who are not
// signed in to the sign-in page and each role to its own home.

import { createRouter, createWebHashHistory } from 'vue-router'
import { onUnauthorized } from './api.js'
import { forget, role, signedIn } from './auth.js'
import authority from './routes/authority.js'
import candidate from './routes/candidate.js'
import ops from './routes/ops.js'
import publicRoutes from './routes/public.js'
import staff from './routes/staff.js'

export const areas = [...publicRoutes, ...candidate, ...staff, ...authority, ...ops]

/** Where a role lands after signing in: its route with meta.home, else 账号与密码. */
export function homeFor(who) {
  const home = areas.find((r) => r.meta?.home && r.meta.roles?.includes(who)
    && (r.meta.home === true || r.meta.home.includes(who)))
  return home ? home.path : '/account'
}

/** The menu of a role (null: not signed in): routes with meta.menu it may open. */
export function menuFor(who) {
  return areas
    .filter((r) => r.meta?.menu && (r.meta.roles ? who && r.meta.roles.includes(who) : !r.meta.guestOnly || !who))
    .sort((a, b) => (a.meta.order ?? 50) - (b.meta.order ?? 50))
}

export const router = createRouter({
  history: createWebHashHistory(),
  routes: [
    { path: '/', redirect: () => (signedIn() ? homeFor(role()) : '/login') },
    ...areas,
    { path: '/:rest(.*)*', name: 'not-found', component: () => import('./views/public/NotFound.vue'),
      meta: { title: '页面不存在' } },
  ],
  scrollBehavior: () => ({ top: 0 }),
})

router.beforeEach((to) => {
  const roles = to.meta?.roles
  if (to.meta?.guestOnly && signedIn()) return homeFor(role())
  if (!roles) return true
  if (!signedIn()) return { name: 'login', query: { next: to.fullPath } }
  if (!roles.includes(role())) return homeFor(role())
  return true
})

router.afterEach((to) => {
  document.title = to.meta?.title ? `${to.meta.title} - 报名网站` : '报名网站'
})

// a signed-in call answered 401: the sign-in ended (expired, or the password changed)
onUnauthorized((error) => {
  forget()
  const here = router.currentRoute.value
  if (here.name !== 'login') {
    const why = error?.reason === 'signed_out' ? 'signed_out' : '1'
    router.push({ name: 'login', query: { next: here.fullPath, expired: why } })
  }
})
