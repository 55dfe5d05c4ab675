// The authority area's pages (filled by the staff engineer): a list of vue-router routes with
// meta.title, meta.roles, meta.menu/order and one meta.home per role (see routes/public.js).
export default []
