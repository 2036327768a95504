"""What a click or a key will do on the page: open a tab, submit a form (guard_submit)."""

from typing import Optional

from browser_errors import ActionError

# For a click, in one round trip: whether it opens a new tab (a link or form with a target
# of its own) and what form it would submit (a submit button's formaction, formmethod and
# formtarget win over the form's own). The control is the button or input the element is
# in, or the one its label is for; `type` is the normalized one (a button of a type it does
# not know submits, as the browser has it).
CLICK_EFFECTS = """el => {
  const label = el.closest('label');
  let control = el.closest('button, input') || (label && label.control);
  if (control && !['BUTTON', 'INPUT'].includes(control.tagName)) control = null;
  const form = control && control.form;
  const submits = !!form && (control.tagName === 'BUTTON'
    ? control.type === 'submit' : (control.type === 'submit' || control.type === 'image'));
  const link = el.closest('a[href], area[href]');
  const owner = link || (submits ? form : null);
  const target = (owner === form && control.hasAttribute('formtarget')
    ? control.getAttribute('formtarget') : owner ? owner.getAttribute('target') : '') || '';
  return {
    opens_tab: !['', '_self', '_parent', '_top'].includes(target.toLowerCase()),
    submit: !submits ? null : {
      action: control.hasAttribute('formaction') ? control.formAction : form.action,
      method: control.hasAttribute('formmethod') ? control.formMethod : form.method}};
}"""

# A click's fast path: chained after `aria-ref=eN`, this selector keeps the element only when
# CLICK_EFFECTS could not find anything (no tab, no submission), so one count() in
# Playwright's own world, no element handle, says "just click". It errs on the side of the
# full check: any link or area with a target, any label, any button in a form (or with a
# form attribute) but a plain or reset one, any submit or image input in a form. An element
# it drops, or one that is gone, goes through CLICK_EFFECTS on its handle.
_LOWER = "'ABCDEGIMNOPRSTU', 'abcdegimnoprstu'"
PLAIN_CLICK = (
    "xpath=self::*[not("
    "ancestor-or-self::*[(local-name() = 'a' or local-name() = 'area') and @target]"
    " or ancestor-or-self::*[local-name() = 'label']"
    " or ancestor-or-self::*[@form or ancestor::*[local-name() = 'form']]["
    f"(local-name() = 'button' and not(translate(@type, {_LOWER}) = 'button'"
    f" or translate(@type, {_LOWER}) = 'reset'))"
    f" or (local-name() = 'input' and (translate(@type, {_LOWER}) = 'submit'"
    f" or translate(@type, {_LOWER}) = 'image'))]"
    ")]")

# For Enter (a key press or type's submit): a field of a form submits it implicitly.
ENTER_SUBMITS = """el => {
  el = el || document.activeElement;
  if (!el || !el.form) return null;
  if (el.tagName === 'TEXTAREA' || el.isContentEditable) return null;
  return {action: el.form.action, method: el.form.method};
}"""


def approval_error(found: Optional[dict]) -> Optional[ActionError]:
    """The needs_approval error for a submission found in the page (None: no submission)."""
    if not isinstance(found, dict):
        return None
    method = str(found.get("method") or "get").upper()
    action = str(found.get("action") or "this page")[:500]
    return ActionError("needs_approval",
                       f"this would submit a form: {method} {action}; ask the user, then "
                       "repeat the action with guard_submit false")


def is_enter(key: str) -> bool:
    return key.split("+")[-1] in ("Enter", "NumpadEnter")
