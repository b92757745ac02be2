"""The kernel's parts (``_kernel_json.lua``, ``_kernel_errors.lua``, ``_kernel_library.lua``) load the first
time a run needs them, behind stubs: a script sees the same functions, names and positions either way."""

import pytest

# What a standard function's misuse says, as the caller named it and at the caller's line, through a stub.
MISUSES = {
    'local r = string.rep\nr("x", 1, {})': "script:2: bad argument #3 to 'r' (string expected, got table)",
    'return ("x"):rep({})': "script:1: bad argument #1 to 'rep' (number expected, got table)",
    "local c = coroutine.create\nc(1)": "script:2: bad argument #1 to 'c' (function expected, got number)",
    'return os.date("%Y", {})': "script:1: bad argument #2 to 'date' (number expected, got table)",
    "\nsetmetatable({}, {__gc = print})": "script:2: setmetatable: __gc metamethods are not allowed in the sandbox",
    "\njson.decode(1)": "script:2: json.decode: expected a string, got number",
    "\njson.encode(print)": "script:2: json.encode: cannot encode a function value",
    'xpcall(print)': "script:1: bad argument #2 to 'xpcall' (function expected, got no value)",
}


@pytest.mark.parametrize("code", MISUSES, ids=range(len(MISUSES)))
def test_a_wrapper_in_a_part_words_its_errors_as_the_standard_function(either, code):
    result = either.run(code)
    assert result.error.type == "runtime"
    assert result.error.message == MISUSES[code]


def test_every_part_in_one_run_leaves_the_script_its_whole_memory(either):
    # Each part loaded during a run moves the limit up by what it took, as the kernel itself is not counted:
    # a script that fills its memory to the same point with and without the parts stops at the same point.
    fill = "local keep = {} for i = 1, 1e9 do keep[i] = i if i % 1000 == 0 then print(i) end end"
    plain = either.run(fill, limits={"memory": 256 * 1024})
    with_parts = either.run('json.encode({1}) pcall(error, {}) local _ = os.time() ' + fill,
                            limits={"memory": 256 * 1024})
    assert plain.error.type == with_parts.error.type == "memory"
    assert abs(len(plain.output.splitlines()) - len(with_parts.output.splitlines())) <= 1
