# ratios.awk: the summary of an alternating benchmark script. Input lines
# "ROUND MEASUREMENT SIDE VALUE" (other lines are ignored); for every
# measurement and every pair of sides A (matching the regexp a) and B
# (matching b), prints A/B as the median and min-max over the rounds of
# each round's A over the same round's B, then the raw figures.
#   awk -v a='^clipline' -v b='^torch' -f scripts/bench/ratios.awk raw.txt
$1 ~ /^[0-9]+$/ && NF == 4 { v[$2, $3, $1] = $4; m[$2] = 1; s[$3] = 1; if ($1 > R) R = $1 }
function median(q, n,   i, j, t) {
  for (i = 2; i <= n; i++) for (j = i; j > 1 && q[j - 1] > q[j]; j--) { t = q[j]; q[j] = q[j - 1]; q[j - 1] = t }
  return n % 2 ? q[(n + 1) / 2] : (q[n / 2] + q[n / 2 + 1]) / 2
}
END {
  for (mm in m) for (x in s) if (x ~ a) for (y in s) if (y ~ b) {
    n = 0; delete q; lo = ""; hi = ""; xv = ""; yv = ""
    for (r = 1; r <= R; r++) if ((mm, x, r) in v && (mm, y, r) in v && v[mm, y, r] > 0) {
      z = v[mm, x, r] / v[mm, y, r]; q[++n] = z
      if (lo == "" || z < lo) lo = z
      if (hi == "" || z > hi) hi = z
      xv = xv " " v[mm, x, r]; yv = yv " " v[mm, y, r]
    }
    if (n) printf "%-6s %s/%s %.2fx [%.2f-%.2f] over %d rounds  (%s:%s; %s:%s)\n", mm, x, y, median(q, n), lo, hi, n, x, xv, y, yv
  }
}
