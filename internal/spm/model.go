// Package spm encodes text with a SentencePiece model (a spiece.model file,
// as SigLIP ships): the model protobuf read directly, the normaliser
// (precompiled character map, whitespace handling, dummy prefix) and the
// unigram encoder reproduce SentencePiece's C++ library (v0.1.97,
// normalizer.cc and unigram_model.cc's optimised Viterbi) bit for bit, so
// Model.Encode gives SentencePieceProcessor.encode's ids. BPE, word and char
// models are refused.
package spm

import (
	"fmt"
	"math"
	"os"

	"google.golang.org/protobuf/encoding/protowire"
)

// File is the SentencePiece model's name in a Hugging Face model directory.
const File = "spiece.model"

// Piece types (ModelProto.SentencePiece.Type).
const (
	normal      = 1
	unknown     = 2
	control     = 3
	userDefined = 4
	unused      = 5
	byteType    = 6
)

// Model types (TrainerSpec.ModelType).
const (
	unigramType = 1
	bpeType     = 2
)

// unkPenalty is subtracted from the lowest piece score to score an unknown
// character (unigram_model.h kUnkPenalty).
const unkPenalty = 10.0

// fltMin is C's FLT_MIN.
const fltMin = float32(1.17549435082228750796873653722224568e-38)

type piece struct {
	text  string
	score float32
	typ   int32
}

// Model is a loaded SentencePiece model. It is safe for concurrent use.
type Model struct {
	pieces       []piece
	ids          map[string]int32 // normal, user-defined and unused pieces
	reserved     map[string]int32 // control, unknown and byte pieces
	byteIDs      [256]int32       // <0xXX> pieces, with byte fallback
	byteFallback bool
	unkID        int32
	minScore     float32 // over normal pieces
	maxScore     float32
	trie         pieceTrie
	norm         normalizer
}

// Load reads a SentencePiece model file.
func Load(path string) (*Model, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	m, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

// Parse reads a serialised ModelProto.
func Parse(data []byte) (*Model, error) {
	m := &Model{ids: map[string]int32{}, reserved: map[string]int32{}, unkID: -1}
	m.norm = defaultNormalizer()
	modelType := int64(unigramType)
	err := fields(data, func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error {
		switch num {
		case 1: // pieces
			p, err := parsePiece(v)
			if err != nil {
				return fmt.Errorf("piece %d: %w", len(m.pieces), err)
			}
			m.pieces = append(m.pieces, p)
		case 2: // trainer_spec
			return fields(v, func(num protowire.Number, _ protowire.Type, _ []byte, x uint64) error {
				switch num {
				case 3:
					modelType = int64(x)
				case 24:
					m.norm.whitespaceAsSuffix = x != 0
				case 35:
					m.byteFallback = x != 0
				}
				return nil
			})
		case 3: // normalizer_spec
			suffix := m.norm.whitespaceAsSuffix // a trainer_spec field, maybe read first
			err := m.norm.parseSpec(v)
			m.norm.whitespaceAsSuffix = suffix
			return err
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("not a SentencePiece model: %w", err)
	}
	switch modelType {
	case unigramType:
	case bpeType:
		return nil, fmt.Errorf("BPE SentencePiece models are not supported (only unigram, as SigLIP's)")
	default:
		return nil, fmt.Errorf("SentencePiece model type %d is not supported (only unigram, as SigLIP's)", modelType)
	}
	if len(m.pieces) == 0 {
		return nil, fmt.Errorf("the model has no pieces")
	}
	// FLT_MAX and FLT_MIN (the smallest normal float, not the most negative)
	// as the C++ starts them: with only negative scores maxScore stays tiny.
	m.minScore, m.maxScore = math.MaxFloat32, fltMin
	for i := range m.byteIDs {
		m.byteIDs[i] = -1
	}
	var user []string
	for i, p := range m.pieces {
		id := int32(i)
		if p.text == "" {
			return nil, fmt.Errorf("piece %d is empty", i)
		}
		switch p.typ {
		case normal, userDefined, unused:
			if _, dup := m.ids[p.text]; dup {
				return nil, fmt.Errorf("piece %d %q appears twice", i, p.text)
			}
			m.ids[p.text] = id
		case unknown, control, byteType:
			m.reserved[p.text] = id
		default:
			return nil, fmt.Errorf("piece %d %q has unknown type %d", i, p.text, p.typ)
		}
		switch p.typ {
		case normal:
			m.minScore = min(m.minScore, p.score)
			m.maxScore = max(m.maxScore, p.score)
		case unknown:
			if m.unkID >= 0 {
				return nil, fmt.Errorf("pieces %d and %d are both the unknown piece", m.unkID, i)
			}
			m.unkID = id
		case userDefined:
			user = append(user, p.text)
		case byteType:
			var b int
			if _, err := fmt.Sscanf(p.text, "<0x%02X>", &b); err != nil || len(p.text) != 6 {
				return nil, fmt.Errorf("byte piece %d is %q, want <0xXX>", i, p.text)
			}
			m.byteIDs[b] = id
		}
	}
	if m.unkID < 0 {
		return nil, fmt.Errorf("the model has no unknown piece")
	}
	if m.byteFallback {
		for b, id := range m.byteIDs {
			if id < 0 {
				return nil, fmt.Errorf("byte_fallback is set but piece <0x%02X> is missing", b)
			}
		}
	}
	m.trie = newPieceTrie(m.ids)
	m.norm.user = newPieceTrie(indexOf(user))
	return m, nil
}

func indexOf(s []string) map[string]int32 {
	m := make(map[string]int32, len(s))
	for i, v := range s {
		m[v] = int32(i)
	}
	return m
}

func parsePiece(b []byte) (piece, error) {
	p := piece{typ: normal}
	err := fields(b, func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error {
		switch num {
		case 1:
			p.text = string(v)
		case 2:
			if typ != protowire.Fixed32Type {
				return fmt.Errorf("score has wire type %d", typ)
			}
			p.score = math.Float32frombits(uint32(x))
		case 3:
			p.typ = int32(x)
		}
		return nil
	})
	return p, err
}

// fields calls fn for each field of the protobuf message b: v holds the
// bytes of length-delimited fields, x the value of the others.
func fields(b []byte, fn func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		var v []byte
		var x uint64
		switch typ {
		case protowire.VarintType:
			x, n = protowire.ConsumeVarint(b)
		case protowire.Fixed32Type:
			var u uint32
			u, n = protowire.ConsumeFixed32(b)
			x = uint64(u)
		case protowire.Fixed64Type:
			x, n = protowire.ConsumeFixed64(b)
		case protowire.BytesType:
			v, n = protowire.ConsumeBytes(b)
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return fmt.Errorf("field %d: %w", num, protowire.ParseError(n))
		}
		b = b[n:]
		if err := fn(num, typ, v, x); err != nil {
			return err
		}
	}
	return nil
}

// Size is the number of pieces (the vocabulary size).
func (m *Model) Size() int { return len(m.pieces) }

// UnknownID is the id of the unknown piece.
func (m *Model) UnknownID() int32 { return m.unkID }

// PieceToID is SentencePieceProcessor.piece_to_id: the piece's id, or the
// unknown piece's id for a string that is no piece.
func (m *Model) PieceToID(s string) int32 {
	if id, ok := m.reserved[s]; ok {
		return id
	}
	if id, ok := m.ids[s]; ok {
		return id
	}
	return m.unkID
}

// Piece is the text of piece id ("" outside the vocabulary).
func (m *Model) Piece(id int32) string {
	if id < 0 || int(id) >= len(m.pieces) {
		return ""
	}
	return m.pieces[id].text
}

// WithoutDummyPrefix returns m with the normaliser's add_dummy_prefix off,
// as transformers' SiglipTokenizer and T5Tokenizer load their model.
func (m *Model) WithoutDummyPrefix() *Model {
	c := *m
	c.norm.addDummyPrefix = false
	return &c
}
