import zhCn from 'element-plus/es/locale/lang/zh-cn'
import { createApp } from 'vue'
import App from './App.vue'
import ElementPlus from './element.js'
import { router } from './router.js'
import './styles/site.css'

createApp(App).use(ElementPlus, { locale: zhCn }).use(router).mount('#app')
