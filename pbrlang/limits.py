"""Limits that keep the reading, checking and evaluation of an unreviewed contract bounded.

Whatever text arrives, `pbrlang.loads` must answer with a contract or with
positioned diagnostics, quickly, and without exhausting the Python stack: the
parser's Transformer, the checker and the compiler all recurse over the
syntax tree, one level (a few Python frames) per level of nesting, and
Python's own compiler of the generated functions likewise. Each limit below is one that no contract written by a person comes
near (the deepest expression in the five example contracts is 10 levels, the
longest has under 600 tokens); each is reported with its own message, at the
place in the text where it is exceeded, never as a RecursionError or a hang.

| limit                         | code | checked by                                   |
|-------------------------------|------|----------------------------------------------|
| MAX_CONTRACT_BYTES            | E005 | parser, before anything else                 |
| MAX_NESTING                   | E004 | parser, a scan of the brackets               |
| MAX_TOKENS                    | E005 | parser, a scan of the words and symbols      |
| MAX_PREFIX_RUN                | E004 | parser, the same scan                        |
| MAX_EXPRESSION_DEPTH          | E004 | parser, while the syntax tree is built       |
| MAX_PARSE_STACK               | E004 | parser, while it reads each token            |
| MAX_DECLARATIONS              | E005 | parser, while the syntax tree is built       |
| MAX_LIST_ITEMS                | E005 | parser, while the syntax tree is built       |
| MAX_DEFINITION_CHAIN          | E004 | checker, over definitions and outcomes       |
| MAX_DIAGNOSTICS               | E005 | parser and checker: reporting stops there    |

The checker also stops (E004) if, checking a circle of definitions that use
each other (itself an error, E107), it finds itself more than
MAX_EXPRESSION_DEPTH + 20 expressions deep: definitions are checked after
those they use, so only a circle can take it deeper than one expression.
"""

MAX_CONTRACT_BYTES = 1_000_000
"""The largest contract text, in bytes of UTF-8: 1,000,000 (E005).

The five example contracts are 3 to 5 kB; a schedule written by people is
never near a megabyte.
"""

MAX_NESTING = 64
"""The deepest nesting of round and square brackets: 64 (E004).

Checked by a scan of the characters before the text is parsed, so that
`((((...` fails at once with the position of the 65th open bracket.
"""

MAX_TOKENS = 50_000
"""The most words, numbers and symbols a contract may have, comments not counted: 50,000 (E005).

The largest example has under 600. Parsing, checking and compiling take time
in proportion to the number of tokens (30 to 50 microseconds a token in all),
so this bounds the time a large but shallow text can take: a 1 MB line of
`a + a + ...` is refused by a quick scan before it is parsed, and a contract
just under the limit is loaded in about two seconds.
"""

MAX_EXPRESSION_DEPTH = 100
"""The deepest an expression may nest, in levels of the syntax tree: 100 (E004).

Every node of an expression is one level, the names and numbers at its leaves
included: each operator, `not`, `-`, field access, call, aggregate and its
`for x in ...` binding; brackets themselves are not. So `a + b + c` is three
levels (two additions, leaning left, and a name), a chain of N terms is N, a
run of N `not`s before a name is N + 1, and `any x in t where any y in ...`
is two levels an aggregate. The deepest expression in the examples is 10.

Checking uses at most four or five Python frames a level, evaluation one or
two (about 410 and 250 frames for the deepest expressions allowed, measured
by tests/test_limits.py), so 100 levels stay well below Python's default
recursion limit of 1,000 even when pbrlang is called from deep inside an
application. The depth is measured as the parser builds the tree (bottom up,
with no recursion), and parsing stops at the first node that goes past it.
"""

MAX_PREFIX_RUN = MAX_EXPRESSION_DEPTH - 1
"""The most `not`s and `-`s in a row: 99 (E004).

Each is one level of nesting, and the name or number after them another, so
a longer run would pass MAX_EXPRESSION_DEPTH (100) in any case; the scan of
the tokens finds it before the parser has to take in every one of 50,000
`-`s. (Two `not`s in a row cancel out, as do two `-`s.)
"""

MAX_PARSE_STACK = 20 * MAX_EXPRESSION_DEPTH
"""The most unfinished symbols the parser may hold at once: 2,000 (E004, as too deep).

A construct that nests to the right (`if c then a else if ...`, `any x in t
where any y in ...`) is built only when its end is reached; until then its
parts wait on the LALR parser's stack, a few symbols a level. No grammar rule
leaves more than ten symbols waiting for one level of nesting, so a stack of
2,000 is a text nested well past MAX_EXPRESSION_DEPTH (or its brackets past
MAX_NESTING), found after a few thousand tokens rather than after them all.
(Long lists and chains do not grow the stack: the parser folds them as it goes.)
"""

MAX_DECLARATIONS = 5_000
"""The most top-level declarations a contract may have: 5,000 (E005).

The examples have 20 to 40. Lark builds each list of the grammar by copying
it once an item (time in the square of its length: 45,000 declarations took
a minute), and some of the checker's work (suggesting a close name for a
misspelt one) grows with the number of names declared. Counted as the parser
builds the list, so parsing stops at the 5,001st.
"""

MAX_LIST_ITEMS = 5_000
"""The most items in any other list of the grammar: 5,000 (E005).

The values of an enumeration, the fields of a table, the periods of a band,
the rows of a tariff, the cells of a row, the clauses of an outcome, the
arguments of a call: each is a list that Lark copies once an item, so each is
bounded for the same reason as MAX_DECLARATIONS.
"""

MAX_DEFINITION_CHAIN = 200
"""The longest chain of definitions and outcomes that depend on each other: 200 (E004).

`let a_1 = a_2 + 1`, `let a_2 = a_3 + 1`, ... is a chain; so is an outcome
that `requires` another, or is paid `every ... after` another. The compiler
orders definitions by following these chains, one Python frame a link. The
longest chain in the examples has 4 links.
"""

MAX_DIAGNOSTICS = 100
"""The most problems listed for one contract: 100 (E005 says the list stops there).

Every problem is rendered with its line of the contract; past a hundred, a
list says nothing more useful, and producing it for 100,000 problems in a
megabyte of text would take minutes.
"""
