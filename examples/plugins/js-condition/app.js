// A Copra condition plugin in JavaScript, built into a WASI component with
// componentize-js (see build.sh). Conditions are named shapes of the input, combined
// with `and`: e.g. `landscape and hd`, `portrait`, `has_audio and short`.

const SHAPES = {
  landscape: (i) => upright(i).width > upright(i).height,
  portrait: (i) => upright(i).height > upright(i).width,
  square: (i) => upright(i).width === upright(i).height,
  hd: (i) => Math.min(upright(i).width, upright(i).height) >= 720,
  uhd: (i) => Math.min(upright(i).width, upright(i).height) >= 2160,
  has_audio: (i) => i.hasAudio,
  short: (i) => i.duration < 60,
};

// Width and height as a player shows them (rotation applied).
function upright(input) {
  const turned = input.rotation === 90 || input.rotation === 270;
  return turned ? { width: input.height, height: input.width } : { width: input.width, height: input.height };
}

function terms(expression) {
  const words = expression.trim().split(/\s+and\s+/);
  for (const word of words) {
    if (!(word in SHAPES)) {
      throw { code: "condition_not_valid", message: `unknown shape '${word}'; known: ${Object.keys(SHAPES).join(", ")}` };
    }
  }
  return words;
}

export const plugin = {
  describe() {
    return { name: "js-condition", version: "0.1.0", kind: "condition", provides: [] };
  },
};

export const condition = {
  check(expression) {
    terms(expression);
  },
  evaluate(expression, input) {
    return terms(expression).every((word) => SHAPES[word](input));
  },
};
