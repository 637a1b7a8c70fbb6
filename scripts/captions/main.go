// Command captions writes the captions of clipline streams, one per line,
// as the text corpus that SentencePiece's spm_train reads (make -f
// pipeline.mk siglip-base-model trains the embedded SigLIP's spiece.model
// on it). It reads captions as tokenize learn does.
//
//	go run ./scripts/captions --split train data/general.prep.arrow data/scenes.prep.arrow > corpus.txt
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/clipline/clipline/internal/tokenize"
)

func main() {
	split := flag.String("split", "", "only rows whose split column is `NAME` (e.g. train)")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: captions [--split NAME] STREAM...\n\nWrites every caption of the streams (- is stdin) to stdout, one a line;\nruns of whitespace inside a caption become one space.\n\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() == 0 {
		flag.Usage()
		os.Exit(2)
	}
	out := bufio.NewWriter(os.Stdout)
	var werr error
	write := func(c string) {
		if werr == nil {
			_, werr = fmt.Fprintln(out, strings.Join(strings.Fields(c), " "))
		}
	}
	for _, path := range flag.Args() {
		if _, err := tokenize.Captions(path, *split, write); err != nil {
			fmt.Fprintf(os.Stderr, "captions: %v\n", err)
			os.Exit(1)
		}
	}
	if werr == nil {
		werr = out.Flush()
	}
	if werr != nil {
		fmt.Fprintf(os.Stderr, "captions: writing stdout: %v\n", werr)
		os.Exit(1)
	}
}
