// Pages anyone may open, and the pages every signed-in role shares.
// Route meta (every area's list follows it; the layout's menu is built from it):
//   meta.title  the page's title (document.title and the heading)
//   meta.roles  who may open it (absent: anyone, signed in or not)
//   meta.menu   the menu label (absent: not in the menu); meta.order sorts the menu
//   meta.home   the page a role lands on after signing in (one per role): true for every
//               role in meta.roles, or a list of some of them
//   meta.wall   may be shown without the site's header, menu and footer (`?wall=1`)
//   meta.guestOnly  only when not signed in (the sign-in page)

const ALL = ['candidate', 'staff', 'authority', 'operator']

export default [
  {
    path: '/login', name: 'login', component: () => import('../views/public/SignIn.vue'),
    meta: { title: '登录', guestOnly: true },
  },
  {
    path: '/register', name: 'register', component: () => import('../views/public/Register.vue'),
    meta: { title: '注册账号', guestOnly: true },
  },
  {
    path: '/password-reset', name: 'password-reset',
    component: () => import('../views/public/PasswordReset.vue'),
    meta: { title: '找回密码', guestOnly: true },
  },
  {
    path: '/verify', name: 'verify', component: () => import('../views/public/Verify.vue'),
    meta: { title: '证书查询验证', menu: '证书查询', order: 95 },
  },
  {
    path: '/account', name: 'account', component: () => import('../views/public/MyAccount.vue'),
    meta: { title: '账号与密码', roles: ALL, menu: '账号与密码', order: 90 },
  },
]
