package extauthz

import (
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// checkMessage checks a message of type md in b as proto.Unmarshal would
// decode it, without building it: the same error or not for every input.
// The decoder uses it for the fields Check does not read (source,
// destination, context_extensions, metadata...): proto.Unmarshal of each
// cost allocations for values thrown away. depth is the recursion budget
// before entering the message.
func checkMessage(b []byte, md protoreflect.MessageDescriptor, depth int) error {
	if depth--; depth < 0 {
		return errDepth
	}
	fields := md.Fields()
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 || num > protowire.MaxValidNumber {
			return errDecode
		}
		b = b[n:]
		if typ == protowire.EndGroupType {
			return errDecode
		}
		if n, err := checkField(b, num, typ, fields.ByNumber(num), depth); err != nil {
			return err
		} else {
			b = b[n:]
		}
	}
	return nil
}

// checkField checks the value of field fd (nil: unknown) at the start of
// b, whose tag was read, and returns its length. As in the runtime, a
// known field whose wire type does not fit is an unknown field.
func checkField(b []byte, num protowire.Number, typ protowire.Type, fd protoreflect.FieldDescriptor, depth int) (int, error) {
	n, err := checkKnown(b, typ, fd, depth)
	if err == errUnknownField {
		if n = protowire.ConsumeFieldValue(num, typ, b); n < 0 {
			return 0, errDecode
		}
		return n, nil
	}
	return n, err
}

func checkKnown(b []byte, typ protowire.Type, fd protoreflect.FieldDescriptor, depth int) (int, error) {
	if fd == nil {
		return 0, errUnknownField
	}
	kind := fd.Kind()
	switch {
	case fd.IsMap(), kind == protoreflect.MessageKind, kind == protoreflect.StringKind, kind == protoreflect.BytesKind:
		if typ != protowire.BytesType {
			return 0, errUnknownField
		}
		v, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return 0, errDecode
		}
		switch {
		case fd.IsMap():
			return n, checkMapEntry(v, fd, depth)
		case kind == protoreflect.MessageKind:
			return n, checkMessage(v, fd.Message(), depth)
		case kind == protoreflect.StringKind && enforceUTF8(fd) && !utf8.Valid(v):
			return 0, errInvalidUTF8
		}
		return n, nil
	case kind == protoreflect.GroupKind:
		// No message that the decoder checks has a group field (proto3):
		// refuse rather than guess.
		return 0, errDecode
	}
	want := scalarWireType(kind)
	if typ == want {
		n := protowire.ConsumeFieldValue(0, typ, b)
		if n < 0 {
			return 0, errDecode
		}
		return n, nil
	}
	if !fd.IsList() || typ != protowire.BytesType {
		return 0, errUnknownField
	}
	v, n := protowire.ConsumeBytes(b) // packed
	if n < 0 {
		return 0, errDecode
	}
	for len(v) > 0 {
		m := protowire.ConsumeFieldValue(0, want, v)
		if m < 0 {
			return 0, errDecode
		}
		v = v[m:]
	}
	return n, nil
}

// checkMapEntry checks one map entry as the runtime's map decoder does:
// one level of depth, key and value checked by their kinds, other fields
// skipped.
func checkMapEntry(b []byte, fd protoreflect.FieldDescriptor, depth int) error {
	if depth--; depth < 0 {
		return errDepth
	}
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 || num > protowire.MaxValidNumber {
			return errDecode
		}
		b = b[n:]
		var f protoreflect.FieldDescriptor
		switch num {
		case 1:
			f = fd.MapKey()
		case 2:
			f = fd.MapValue()
		}
		if n, err := checkField(b, num, typ, f, depth); err != nil {
			return err
		} else {
			b = b[n:]
		}
	}
	return nil
}

// scalarWireType is the wire type of a scalar kind.
func scalarWireType(k protoreflect.Kind) protowire.Type {
	switch k {
	case protoreflect.Fixed32Kind, protoreflect.Sfixed32Kind, protoreflect.FloatKind:
		return protowire.Fixed32Type
	case protoreflect.Fixed64Kind, protoreflect.Sfixed64Kind, protoreflect.DoubleKind:
		return protowire.Fixed64Type
	}
	return protowire.VarintType
}

// enforceUTF8 reports whether proto.Unmarshal refuses invalid UTF-8 in the
// string field fd (google.golang.org/protobuf/internal/strs.EnforceUTF8).
func enforceUTF8(fd protoreflect.FieldDescriptor) bool {
	if fd.Syntax() == protoreflect.Editions {
		if e, ok := fd.(interface{ EnforceUTF8() bool }); ok {
			return e.EnforceUTF8()
		}
	}
	return fd.Syntax() == protoreflect.Proto3
}
