# One line per (problem, method, kernel) from bench/sparse_attention_h200.sh's logs (bench-attention's
# output), so that a device call's tail holds the whole sweep: tile density, our kernel's ms (bf16 or f16),
# /(d·cuDNN), and with --quant the quantized kernel's ms, ours / quant (kernel only) and end to end
# (pre-pass included).
# usage: awk -f bench/sparse_summary.awk OUT/sparse_*.log
FNR == 1 {
  if (row != "") print row
  problem = FILENAME
  sub(/.*sparse_/, "", problem)
  sub(/\.log$/, "", problem)
  row = ""
}
/^cuDNN dense: / { printf "%-11s cuDNN dense %s ms\n", problem, $3 }
# A method row: method, kernel, plan ms, upload ms, tile dens, flop dens, sparse ms, TFLOP/s, /cudnn, /(d·cud).
NF == 10 && $2 ~ /^(auto|sm80|sm90|sm90ws)$/ {
  if (row != "") print row
  method = $1
  sub(/,dilation=1x1x1,causal=0x0x0/, "", method)
  sub(/,radius=1$/, "", method)
  row = sprintf("%-11s %-40s %-6s tile %s  ours %s ms  /(d·cud) %s", problem, method, $2, $5, $7, $10)
}
# "  int8-fp8pv (sm90ws kernel): 62.740 ms = pre-pass 0.811 + kernel 62.034 (...); bf16 sparse / int8-fp8pv
# kernel = 1.548x, / (pre-pass + kernel) = 1.531x; ..."
/^  [a-z0-9-]+ \([a-z0-9]+ kernel\): [0-9.]+ ms = pre-pass / && row != "" {
  k = $0; sub(/.* \+ kernel /, "", k); sub(/ .*/, "", k)
  r = $0; sub(/.* kernel = /, "", r); sub(/x.*/, "", r)
  e = $0; sub(/.*\(pre-pass \+ kernel\) = /, "", e); sub(/x.*/, "", e)
  row = row sprintf("  |  %s %s ms  ours/quant %s  end to end %s", $1, k, r, e)
}
END { if (row != "") print row }
