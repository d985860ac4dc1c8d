/**
 * The console's one style sheet, served as `/console/console.css` (kept in a module so the build needs no
 * asset copy). Colours meet WCAG AA contrast on white; the layout stacks on narrow screens.
 */
export const CONSOLE_CSS = `
*{box-sizing:border-box}
body{margin:0;font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1a1a1a;background:#fff}
header{display:flex;flex-wrap:wrap;align-items:center;gap:.5rem 1rem;padding:.5rem 1rem;background:#12355b;color:#fff}
header a,header button{color:#fff}
.brand{font-weight:700;margin-right:auto}
nav{display:flex;flex-wrap:wrap;gap:.5rem 1rem;align-items:center}
main{max-width:72rem;margin:0 auto;padding:1rem}
h1{font-size:1.5rem;margin:.5rem 0 1rem}
h2{font-size:1.2rem;margin:1.5rem 0 .5rem}
a{color:#0b4f9c}
a:focus,button:focus,input:focus,select:focus{outline:3px solid #f2a900;outline-offset:2px}
label{display:block;font-weight:600;margin:.5rem 0 .25rem}
input[type=text],input[type=password],input[type=search],select{width:100%;max-width:32rem;padding:.5rem;font:inherit;border:1px solid #555;border-radius:4px}
button{font:inherit;padding:.45rem .9rem;border:1px solid #12355b;border-radius:4px;background:#12355b;color:#fff;cursor:pointer}
header button{background:transparent;border-color:#fff}
button.danger{background:#a4161a;border-color:#a4161a}
a.danger{color:#a4161a}
form.inline{display:inline}
fieldset{border:1px solid #c8c8c8;border-radius:6px;margin:.75rem 0;padding:.5rem 1rem}
legend{font-weight:600}
.links{font-size:.95rem}
dl.meta{display:grid;grid-template-columns:max-content 1fr;gap:.15rem 1rem;margin:.5rem 0}
dl.meta dt{font-weight:600}
dl.meta dd{margin:0}
caption{text-align:left;font-weight:600;padding:.25rem 0}
.row{display:flex;flex-wrap:wrap;gap:.5rem;align-items:flex-end}
.card{border:1px solid #c8c8c8;border-radius:6px;padding:.75rem 1rem;margin:.75rem 0}
.facts{font-size:1.05rem;background:#eef4fb;border-left:4px solid #12355b;padding:.5rem .75rem}
.status{display:inline-block;white-space:nowrap;padding:0 .4rem;border-radius:3px;font-weight:600;background:#e8e8e8;color:#1a1a1a}
.status.delivered,.status.ok,.status.inbox,.status.pass{background:#d7f0dc;color:#0f5323}
.status.bounced,.status.critical,.status.spam,.status.failed,.status.fail{background:#fbd9d9;color:#7a0d0d}
.status.deferred,.status.warning,.status.queued,.status.warn{background:#fff0c2;color:#5c4300}
.error{border:2px solid #a4161a;background:#fdecec;padding:.5rem .75rem}
.notice{border:2px solid #0f5323;background:#e9f7ec;padding:.5rem .75rem}
table{border-collapse:collapse;width:100%;margin:.5rem 0}
th,td{text-align:left;padding:.35rem .5rem;border-bottom:1px solid #ddd;vertical-align:top}
code,.mono{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.9em;word-break:break-all}
@media (max-width:40rem){
  table,thead,tbody,tr,th,td{display:block}
  thead{position:absolute;left:-9999px}
  tr{border-bottom:2px solid #ccc;margin-bottom:.5rem}
  td{border:none;padding:.15rem 0;overflow-wrap:anywhere}
  td[data-label]::before{content:attr(data-label) ": ";font-weight:600}
}
`;
