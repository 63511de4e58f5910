// ort_check.js: runs an exported ONNX model in ONNX Runtime (the npm package
// onnxruntime-node) on a CSV file and compares the outputs with infer's.
//
//   node scripts/ort_check.js model.onnx data.csv values.txt [classes.txt]
//
// values.txt: what `infer --probs` (classifiers) or `infer` (regressors) printed;
// classes.txt: what `infer` printed for a classifier. Passes when every row's argmax
// is infer's class and every value is within RTOL relative of infer's, values smaller
// than FLOOR in magnitude being compared as if they were FLOOR (there the difference
// must be under RTOL * FLOOR). Prints one line; exit status 1 on a mismatch, 2 when
// the model cannot run.
'use strict';
const fs = require('fs');
const ort = require('onnxruntime-node');

const RTOL = Number(process.env.RTOL || 1e-5), FLOOR = Number(process.env.FLOOR || 1e-6);

function readRows(path) {
    const rows = [];
    for (const line of fs.readFileSync(path, 'utf8').split(/\r?\n/)) {
        if (!line.trim()) continue;
        const v = line.split(',').map(Number);
        if (rows.length === 0 && v.some(Number.isNaN)) continue; // a header row
        rows.push(v);
    }
    return rows;
}

async function main() {
    const [model, data, values, classes] = process.argv.slice(2);
    const x = readRows(data), ref = readRows(values);
    const cls = classes ? readRows(classes).map((r) => r[0]) : null;
    const session = await ort.InferenceSession.create(model);
    const type = session.inputMetadata ? session.inputMetadata[0].type : 'float32';
    const n = x.length, d = x[0].length;
    const flat = type === 'float64' ? new Float64Array(n * d) : new Float32Array(n * d);
    x.forEach((r, i) => flat.set(r, i * d));
    const out = (await session.run({input: new ort.Tensor(type, flat, [n, d])})).output;
    const k = out.dims[1];
    let worst = 0, worstAll = 0, agree = 0, bad = 0;
    for (let i = 0; i < n; i++) {
        let best = 0;
        for (let j = 0; j < k; j++) {
            const a = out.data[i * k + j], b = ref[i][j];
            if (a > out.data[i * k + best]) best = j;
            const m = Math.max(Math.abs(a), Math.abs(b)), diff = Math.abs(a - b);
            if (m > 0) worstAll = Math.max(worstAll, diff / m);
            const e = diff / Math.max(m, FLOOR);
            worst = Math.max(worst, e);
            if (!(e <= RTOL)) bad++;
        }
        if (cls && best === cls[i]) agree++;
    }
    const rowsOk = n === ref.length && (!cls || cls.length === n);
    const ok = rowsOk && bad === 0 && (!cls || agree === n);
    console.log(`${model}: ${type} ${n} rows x ${k} outputs in ONNX Runtime ${ort.env.versions ? ort.env.versions.common : ''}: ` +
                (cls ? `classes agree ${agree}/${n}, ` : '') +
                `max relative error ${worst.toExponential(2)} (floor ${FLOOR}; ${worstAll.toExponential(2)} with none)` +
                (ok ? '' : `: FAIL (${bad} values out of tolerance ${RTOL}${rowsOk ? '' : ', row counts differ'})`));
    process.exit(ok ? 0 : 1);
}

main().catch((e) => { console.log(`${process.argv[2]}: cannot run: ${e.message.split('\n')[0]}`); process.exit(2); });
