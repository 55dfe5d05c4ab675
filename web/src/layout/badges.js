// Counts the menu shows next to an item (meta.badge names one), e.g. unread messages.
// Pages set them; the layout reads them.
import { reactive } from 'vue'

export const badges = reactive({})
