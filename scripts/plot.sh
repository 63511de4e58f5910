#!/bin/sh
# plot.sh METRICS.csv curve.png: loss and accuracy against epoch, train and validation,
# from the CSV that train --metrics writes. Needs gnuplot (Debian: gnuplot-nox); make
# tests does not.
set -eu
if [ $# -ne 2 ]; then
    echo "usage: $0 METRICS.csv curve.png" >&2
    exit 2
fi
command -v gnuplot >/dev/null || { echo "$0: gnuplot not found (Debian: apt install gnuplot-nox)" >&2; exit 1; }
[ -r "$1" ] || { echo "$0: cannot read $1" >&2; exit 1; }
gnuplot <<GP
set terminal pngcairo size 960,400 font ",10" noenhanced
set output "$2"
set datafile separator ","
set key autotitle columnhead
set multiplot layout 1,2 title "$(basename "$1")"
set xlabel "epoch"
set grid
set title "loss"
plot "$1" using 1:2 with linespoints title "train", "$1" using 1:4 with linespoints title "validation"
set title "accuracy"
set key bottom right
plot "$1" using 1:3 with linespoints title "train", "$1" using 1:5 with linespoints title "validation"
unset multiplot
GP
