package dist

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// Codec turns values into the bytes of a message and back. Decode must
// refuse bytes that are not an encoding of a value of the queue's type:
// such a message is dead-lettered with the error, never redelivered.
type Codec interface {
	Encode(v any) ([]byte, error)
	Decode(data []byte, v any) error
}

// JSON is the default codec: encoding/json, strict about unknown fields and
// trailing data, so that a message meant for another type is refused
// rather than half read.
type JSON struct{}

// Encode implements Codec.
func (JSON) Encode(v any) ([]byte, error) { return json.Marshal(v) }

// Decode implements Codec.
func (JSON) Decode(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return fmt.Errorf("trailing data after the value")
	}
	return nil
}
