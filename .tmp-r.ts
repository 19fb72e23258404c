import { startApp } from '/work/main/test/helpers/app.ts';
try { const app = await startApp('postgres'); console.log('ok', app.url); await app.close(); } catch (e) { console.error('ERR', e); }
process.exit(0);
