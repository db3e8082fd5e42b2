"""Tree-sitter queries that find definitions, references and imports, one query per language.

Capture names are the contract with ``extract.py``:
- ``@def.<kind>`` on a definition node, with ``@name`` on its name (several names = several definitions) and an
  optional ``@container`` naming its owner explicitly (Go receivers);
- ``@scope`` with ``@name``: a node that only contains definitions (a Rust ``impl`` block);
- ``@ref.<kind>`` on a referenced identifier (call, type, import, reference; ``ref.jsx`` for JSX tags);
- ``@import.<language>`` on an import statement, decoded per language in extract.py;
- names starting with ``_`` are only used by predicates.
Node names come from each grammar's src/node-types.json; https://tree-sitter.github.io/tree-sitter/using-parsers/queries
documents the syntax (``!field`` negation, ``.`` anchors, ``#eq?`` / ``#any-of?`` predicates).
"""

from __future__ import annotations

PYTHON = """
(function_definition name: (identifier) @name) @def.function
(class_definition name: (identifier) @name) @def.class
(module (expression_statement (assignment left: (identifier) @name) @def.variable))
(class_definition body: (block (expression_statement (assignment left: (identifier) @name) @def.variable)))
(type_alias_statement (type (identifier) @name)) @def.type

(call function: (identifier) @ref.call)
(call function: (attribute attribute: (identifier) @ref.call))
(decorator (identifier) @ref.reference)
(decorator (attribute attribute: (identifier) @ref.reference))
(type (identifier) @ref.type)
(type (attribute attribute: (identifier) @ref.type))
(generic_type (identifier) @ref.type)
(class_definition superclasses: (argument_list (identifier) @ref.type))
(class_definition superclasses: (argument_list (attribute attribute: (identifier) @ref.type)))
(import_from_statement name: (dotted_name (identifier) @ref.import))
(import_from_statement name: (aliased_import name: (dotted_name (identifier) @ref.import)))

(import_statement) @import.python
(import_from_statement) @import.python
"""

_JS_COMMON = """
(function_declaration name: (identifier) @name) @def.function
(generator_function_declaration name: (identifier) @name) @def.function
(class_declaration name: (_) @name) @def.class
(method_definition name: (_) @name) @def.method
(program (lexical_declaration (variable_declarator name: (identifier) @name
    value: [(arrow_function) (function_expression) (generator_function)]) @def.function))
(program (export_statement declaration: (lexical_declaration (variable_declarator name: (identifier) @name
    value: [(arrow_function) (function_expression) (generator_function)]) @def.function)))
(program (variable_declaration (variable_declarator name: (identifier) @name
    value: [(arrow_function) (function_expression) (generator_function)]) @def.function))
(program (lexical_declaration (variable_declarator name: (identifier) @name) @def.variable))
(program (export_statement declaration: (lexical_declaration (variable_declarator name: (identifier) @name)
    @def.variable)))
(program (variable_declaration (variable_declarator name: (identifier) @name) @def.variable))
(program (export_statement declaration: (variable_declaration (variable_declarator name: (identifier) @name)
    @def.variable)))

(call_expression function: (identifier) @ref.call)
(call_expression function: (member_expression property: (property_identifier) @ref.call))
(new_expression constructor: (identifier) @ref.call)
(new_expression constructor: (member_expression property: (property_identifier) @ref.call))
(import_specifier name: (identifier) @ref.import)
(import_clause (identifier) @ref.import)

(import_statement source: (string (string_fragment) @import.js))
(export_statement source: (string (string_fragment) @import.js))
(call_expression function: (identifier) @_require arguments: (arguments . (string (string_fragment) @import.js))
    (#eq? @_require "require"))
(call_expression function: (import) arguments: (arguments . (string (string_fragment) @import.js)))
"""

_JS_ONLY = """
(field_definition property: (property_identifier) @name) @def.variable
(class_heritage (identifier) @ref.type)
(class_heritage (member_expression property: (property_identifier) @ref.type))
"""

_TS_ONLY = """
(abstract_class_declaration name: (_) @name) @def.class
(interface_declaration name: (_) @name) @def.interface
(type_alias_declaration name: (_) @name) @def.type
(enum_declaration name: (_) @name) @def.enum
(internal_module name: (_) @name) @def.module
(module name: (_) @name) @def.module
(function_signature name: (_) @name) @def.function
(method_signature name: (_) @name) @def.method
(abstract_method_signature name: (_) @name) @def.method
(public_field_definition name: (_) @name) @def.variable

(type_identifier) @ref.type
(extends_clause value: (identifier) @ref.type)
(extends_clause value: (member_expression property: (property_identifier) @ref.type))
"""

_JSX = """
(jsx_opening_element name: (identifier) @ref.jsx)
(jsx_self_closing_element name: (identifier) @ref.jsx)
"""

JAVASCRIPT = _JS_COMMON + _JS_ONLY + _JSX
TYPESCRIPT = _JS_COMMON + _TS_ONLY
TSX = _JS_COMMON + _TS_ONLY + _JSX

GO = """
(function_declaration name: (identifier) @name) @def.function
(method_declaration
    receiver: (parameter_list (parameter_declaration type: [
        (type_identifier) @container
        (pointer_type (type_identifier) @container)
        (generic_type type: (type_identifier) @container)
        (pointer_type (generic_type type: (type_identifier) @container))]))
    name: (field_identifier) @name) @def.method
(method_declaration name: (field_identifier) @name) @def.method
(type_spec name: (type_identifier) @name type: (struct_type)) @def.struct
(type_spec name: (type_identifier) @name type: (interface_type)) @def.interface
(type_spec name: (type_identifier) @name) @def.type
(type_alias name: (type_identifier) @name) @def.type
(method_elem name: (field_identifier) @name) @def.method
(const_spec name: (identifier) @name) @def.constant
(source_file (var_declaration (var_spec name: (identifier) @name) @def.variable))
(source_file (var_declaration (var_spec_list (var_spec name: (identifier) @name) @def.variable)))

(call_expression function: (identifier) @ref.call)
(call_expression function: (selector_expression field: (field_identifier) @ref.call))
(type_identifier) @ref.type

(import_spec path: (interpreted_string_literal (interpreted_string_literal_content) @import.go))
(import_spec path: (raw_string_literal (raw_string_literal_content) @import.go))
"""

RUST = """
(function_item name: (identifier) @name) @def.function
(function_signature_item name: (identifier) @name) @def.function
(struct_item name: (type_identifier) @name) @def.struct
(union_item name: (type_identifier) @name) @def.struct
(enum_item name: (type_identifier) @name) @def.enum
(trait_item name: (type_identifier) @name) @def.trait
(type_item name: (type_identifier) @name) @def.type
(const_item name: (identifier) @name) @def.constant
(static_item name: (identifier) @name) @def.constant
(mod_item name: (identifier) @name) @def.module
(macro_definition name: (identifier) @name) @def.macro
(impl_item type: [
    (type_identifier) @name
    (generic_type type: (type_identifier) @name)
    (scoped_type_identifier name: (type_identifier) @name)]) @scope

(call_expression function: (identifier) @ref.call)
(call_expression function: (field_expression field: (field_identifier) @ref.call))
(call_expression function: (scoped_identifier name: (identifier) @ref.call))
(call_expression function: (generic_function function: (identifier) @ref.call))
(macro_invocation macro: (identifier) @ref.call)
(type_identifier) @ref.type
(use_list (identifier) @ref.import)
(use_declaration argument: (scoped_identifier name: (identifier) @ref.import))
(use_as_clause path: (scoped_identifier name: (identifier) @ref.import))

(use_declaration argument: (_) @import.rust_use)
(mod_item name: (identifier) @import.rust_mod !body)
"""

JAVA = """
(class_declaration name: (identifier) @name) @def.class
(interface_declaration name: (identifier) @name) @def.interface
(enum_declaration name: (identifier) @name) @def.enum
(record_declaration name: (identifier) @name) @def.class
(annotation_type_declaration name: (identifier) @name) @def.interface
(method_declaration name: (identifier) @name) @def.method
(constructor_declaration name: (identifier) @name) @def.method
(field_declaration declarator: (variable_declarator name: (identifier) @name)) @def.variable
(constant_declaration declarator: (variable_declarator name: (identifier) @name)) @def.constant
(enum_constant name: (identifier) @name) @def.constant

(method_invocation name: (identifier) @ref.call)
(object_creation_expression type: (type_identifier) @ref.call)
(type_identifier) @ref.type
(marker_annotation name: (identifier) @ref.reference)
(annotation name: (identifier) @ref.reference)
(import_declaration (scoped_identifier name: (identifier) @ref.import))

(import_declaration) @import.java
"""

RUBY = """
(module name: [(constant) @name (scope_resolution name: (constant) @name)]) @def.module
(class name: [(constant) @name (scope_resolution name: (constant) @name)]) @def.class
(method name: (_) @name) @def.function
(singleton_method name: (_) @name) @def.method
(assignment left: (constant) @name) @def.constant
(call method: (identifier) @_attr arguments: (argument_list (simple_symbol) @name)
    (#any-of? @_attr "attr_reader" "attr_writer" "attr_accessor")) @def.method

(call method: (identifier) @ref.call)
(call receiver: (constant) @ref.reference)
(superclass (constant) @ref.type)
(superclass (scope_resolution name: (constant) @ref.type))
(call method: (identifier) @_mixin arguments: (argument_list (constant) @ref.type)
    (#any-of? @_mixin "include" "extend" "prepend"))

(call method: (identifier) @import.ruby arguments: (argument_list . (string (string_content) @import.ruby_arg))
    (#any-of? @import.ruby "require" "require_relative" "load"))
"""

QUERIES: dict[str, str] = {
    "python": PYTHON,
    "javascript": JAVASCRIPT,
    "typescript": TYPESCRIPT,
    "tsx": TSX,
    "go": GO,
    "rust": RUST,
    "java": JAVA,
    "ruby": RUBY,
}
