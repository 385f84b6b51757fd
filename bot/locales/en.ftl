# Every text a member or admin sees, in English (the default language).
# Fluent syntax: https://projectfluent.org/fluent/guide/ — { $name } is a placeholder; plurals are
# selectors on a number ({ $count -> [one] … *[other] … }). Keep the keys and placeholders of every
# language the same as here (a test checks).

## Job replies

job-title-active = 🎨 Imagining…
job-title-done = ✅ Done
job-title-failed = ⚠️ No image this time
job-title-cancelled = 🛑 Cancelled
job-field-from = From
job-field-aspect = Aspect ratio
job-field-resolution = Resolution
job-field-references = References
job-field-status = Status
job-field-estimate = Estimate
job-field-note = Note
job-field-took = Took
job-field-cancel = Cancel
job-field-model-reply = Model's reply
job-field-what-happened = What happened
job-aspect-follows = follows the reference
job-origin-link = { $action ->
    [reroll] Re-roll of
    [edit] Edit of
    [vary] Variation of
   *[upscale] Upscale of
} [image #{ $parent }]({ $link })
job-origin = { $action ->
    [reroll] Re-roll of
    [edit] Edit of
    [vary] Variation of
   *[upscale] Upscale of
} image #{ $parent }
job-footer-active = Press Cancel, react with ❌ or use /cancel to stop it.
job-footer-done = ❌ no longer applies: this job is finished.
job-footer-not-counted = This did not count against your quota.
job-footer-cancelled = ❌ no longer applies. This did not count against your quota.
job-late-cancel = Your cancel came too late: the image was already finished (and paid for).
job-on-its-way = { $member }, your image is on its way.
job-here-is-your-image = { $member }, here is your image.
job-about-your-image = { $member }, about your image.

status-cancelling = Cancelling…
status-sending = Sending to the image service…
status-queued = Queued, position { $position }
status-waiting = Waiting for the image service · sent { $since }
status-generating = Generating · started { $since }
status-finishing = Finishing…
duration-seconds = { $seconds } s
duration-minutes = { $minutes } min { $seconds } s
estimate-soon = any moment now
estimate-at = expected { $at }
size-mib = { NUMBER($value, minimumFractionDigits: 1, maximumFractionDigits: 1) } MiB
size-kib = { NUMBER($value, maximumFractionDigits: 0) } KiB
fit-note = Shrunk from { $original } to { $now } to fit Discord's upload limit.
fit-note-format = Saved as { $format }.
fit-note-size = Now { $width }×{ $height }.
notice-cancel-unreachable = Cancel failed: the image service could not be reached. The job is still running.
notice-cancel-unknown = Cancel failed: the image service no longer knows this job.

button-cancel = Cancel
button-reroll = Re-roll
button-edit = Edit
button-vary = Vary
button-upscale = Upscale

failure-content-blocked = The image service blocked this prompt or a reference image. Try rewording it.
failure-invalid-request = The image service refused the request (a reference image may be unreadable).
failure-upstream-timeout = The image service took too long, so the job was stopped. Please try again.
failure-upstream-failed = The image service failed to generate this image. Please try again.
failure-upstream-unavailable = The image service is unavailable right now. Please try again later.
failure-account-problem = The bot can't use the image service right now (a problem with the bot's account). Its operator can see the details in the bot's logs.
failure-interrupted = The bot restarted while sending this request and can't tell whether the image service got it, so it stopped here rather than risk a second charge. Please try again.
failure-no-image = The image service finished without returning an image. Please try again.
failure-invalid-reference = A reference image could no longer be read after the bot restarted. Please try again.
failure-submit-uncertain = The image service did not confirm the request, so the bot stopped here. Please try again.
failure-delivery-failed = The image was made but could not be posted here. Please try again.
failure-result-unavailable = The image was made but could not be fetched. Please try again.
failure-lost-upstream = The image service lost track of this job. Please try again.

cancelled-by-service = The image service cancelled this job { $stage ->
    [pending] before it was sent
    [queued] while queued
   *[running] while generating
}.
cancelled-self = Cancelled { $stage ->
    [pending] before it was sent
    [queued] while queued
   *[running] while generating
}.
cancelled-by = Cancelled by { $by } { $stage ->
    [pending] before it was sent
    [queued] while queued
   *[running] while generating
}.

refusal-max-concurrent = You've reached the number of images you may have in progress at once ({ $allowed }). Wait for one to finish, or cancel one with /cancel.
refusal-daily = You've reached { $limit ->
    [guild] this server's daily image limit
   *[user] your daily image limit in this server
}: { $used } of { $allowed } used today.
refusal-cost = This one would count as { $cost }.
refusal-resets = It resets <t:{ $at }:R> (<t:{ $at }:t>, midnight UTC).

## /imagine, its form, the buttons and cancelling

imagine-restarting = The bot is restarting right now. Please try again in a minute; nothing was counted.
imagine-guild-only = Images can only be made in a server, not in direct messages.
imagine-missing-permissions = I can't work in this channel: I need the { $permissions } permission(s) here. Ask a server admin, or try another channel.
permission-view-channel = View Channel
permission-attach-files = Attach Files
imagine-prompt-empty = The prompt is empty. Describe the image you want.
imagine-prompt-too-long = The prompt is { $length } characters long; the limit is { $max }. Please shorten it.
imagine-too-many-references = That's { $count } reference images; the model takes at most { $max }.
reference-not-an-image = `{ $file }` is not an image. Nothing was submitted.
reference-unsupported = `{ $file }` is not a supported image type (use PNG, JPEG, WebP or HEIC). Nothing was submitted.
reference-too-large = `{ $file }` is larger than the { $cap } limit per reference image. Nothing was submitted.
reference-corrupt = `{ $file }` could not be read as an image (it may be damaged). Nothing was submitted.
reference-download-failed = `{ $file }` could not be downloaded from Discord.
menu-no-images = That message has no images to use as references. Pick a message with image attachments, or use /imagine.
menu-too-many-images = That message has { $count } images; at most { $max } can be used.
form-title-imagine = Imagine with these images
form-title-edit = Edit this image
form-prompt = Prompt
form-aspect = Aspect ratio
form-aspect-follow = Follow the reference images
form-resolution = Resolution
form-more-images = More reference images
form-more-images-hint = Optional. Up to { $max } images in all.
form-text-reply = Text reply
form-image-only = Image only
form-image-and-text = Image and the model's text reply
followup-unknown = That image isn't known here any more.
followup-no-image = That message no longer has its image, so there is nothing to build on.
followup-highest-tier = That image is already at the highest tier (4K).
followup-unavailable = Making images is unavailable right now.
followup-double-click = That one is already on its way (the button was pressed twice).
cancel-requested = { $job ->
    [none] Cancelling your image.
   *[other] Cancelling your image #{ $job }.
}
cancel-already-requested = { $job ->
    [none] That image is already being cancelled.
   *[other] That image #{ $job } is already being cancelled.
}
cancel-not-active = { $job ->
    [none] That image has already finished.
   *[other] That image #{ $job } has already finished.
}
cancel-too-late = { $job ->
    [none] Too late: the image is already finished and will be delivered.
   *[other] Too late: the image #{ $job } is already finished and will be delivered.
}
cancel-failed = { $job ->
    [none] The image service could not cancel the image; it keeps running. See its reply.
   *[other] The image service could not cancel the image #{ $job }; it keeps running. See its reply.
}
cancel-unknown = That image isn't known here.
cancel-not-yours = Only the member who asked for this image (or a moderator) can cancel it.
cancel-nothing = You have no images in progress here.
cancel-not-in-progress = That isn't one of your images in progress. Run /cancel without options to cancel the latest.
request-not-accepted = This request was not accepted.
unexpected-error = Something went wrong on the bot's side. Please try again in a moment.
command-not-here = You can't use this command here.

## Command names and descriptions (what Discord shows in the command picker)

cmd-imagine = imagine
    .description = Generate an image with Nano Banana Pro
cmd-imagine-prompt = prompt
    .description = What to draw (up to 2500 characters)
cmd-imagine-aspect-ratio = aspect_ratio
    .description = Shape of the image; without it, it follows your first reference image (else 1:1)
cmd-imagine-resolution = resolution
    .description = Size tier: 1K, 2K or 4K (4K may count as more than one image)
cmd-imagine-text-reply = text_reply
    .description = Also get the model's text reply
cmd-imagine-image1 = image1
    .description = Reference image
cmd-imagine-image2 = image2
    .description = Reference image
cmd-imagine-image3 = image3
    .description = Reference image
cmd-imagine-image4 = image4
    .description = Reference image
cmd-imagine-image5 = image5
    .description = Reference image
cmd-imagine-image6 = image6
    .description = Reference image
cmd-imagine-image7 = image7
    .description = Reference image
cmd-imagine-image8 = image8
    .description = Reference image
cmd-imagine-image9 = image9
    .description = Reference image
cmd-imagine-image10 = image10
    .description = Reference image
menu-imagine-with-these-images = Imagine with these images
cmd-cancel = cancel
    .description = Cancel one of your images that is still in progress
cmd-cancel-job = job
    .description = Which image (default: your most recent one in progress)

## quota, settings, history

# /quota and /usage
quota-field-user-daily = Images per member per day
quota-field-guild-daily = Images per server per day
quota-field-max-concurrent = Images in progress per member
quota-field-weight-4k = A 4K image counts as
# A daily or in-progress limit, as a number of images.
quota-limit = { $count }
quota-images =
    { $count ->
        [one] { $count } image
       *[other] { $count } images
    }
# The 4K weight when the server has not set one (the operator's default applies).
quota-weight-default = default
quota-not-manager = Only members with the Manage Server permission can change or view quota settings.
quota-nothing-changed = Nothing changed: give at least one option. To remove a limit, set it to 0.
quota-updated = Quota updated.
quota-title = Image quota
quota-used-today = Used today (server)
# $reset is a Discord timestamp (<t:…:R>): the member's client shows it in their language.
quota-used = { $used } · resets <t:{ $reset }:R>
quota-used-of = { $used } of { $limit } · resets <t:{ $reset }:R>
quota-recent-changes = Recent changes
quota-change-reset-member = reset today's use of { $member }
quota-change-reset-server = reset today's use of the whole server
quota-reset-member =
    Reset today's use of { $member } ({ $cleared ->
        [one] { $cleared } image
       *[other] { $cleared } images
    } given back).
quota-reset-server =
    Reset today's use of the whole server ({ $cleared ->
        [one] { $cleared } image
       *[other] { $cleared } images
    } given back).
usage-you-left = You: { $left } of { $limit } left today ({ $used } used).
usage-you-unlimited = You: { $used } used today, no daily limit.
usage-server-left = This server: { $left } of { $limit } left today ({ $used } used).
usage-server-unlimited = This server: { $used } used today, no daily limit.
usage-in-progress = In progress: { $active } of { $limit } at once.
usage-weight-4k = A 4K image counts as { $weight }.
usage-resets = Daily use resets <t:{ $reset }:R> (<t:{ $reset }:t>, midnight UTC).

# Server controls: refusals of /imagine and the buttons, lines in the log channel, and /settings
controls-refused-blocked-member = You can't make images in this server: an admin has blocked you.
controls-refused-blocked-words = Your prompt contains a word or phrase that this server doesn't allow. Please rephrase it; nothing was counted.
controls-refused-4k-off = 4K is turned off in this server. Choose 1K or 2K; nothing was counted.
controls-refused-4k-roles = 4K is only for some roles in this server. Choose 1K or 2K; nothing was counted.
controls-log-blocked-member = 🚫 { $member } is blocked and tried to make an image in { $channel }.
controls-log-blocked-words = 🚫 { $member }'s prompt in { $channel } was refused: it contains a blocked word or phrase.
controls-log-quota-user-daily = 📉 { $member } reached their daily limit in { $channel } ({ $used } of { $allowed } used).
controls-log-quota-guild-daily = 📉 { $member } was refused in { $channel }: the server's daily limit is reached ({ $used } of { $allowed } used).
controls-log-quota-max-concurrent =
    📉 { $member } was refused in { $channel }: { $allowed ->
        [one] { $allowed } image
       *[other] { $allowed } images
    } in progress at once.
# $reason is the failure's code (e.g. `upstream_timeout`), the same in every language.
controls-log-failed = ⚠️ Image #{ $job } by { $member } in { $channel } failed ({ $reason }).
controls-usage-blocked = You can't make images in this server: an admin has blocked you.
controls-usage-from-role = Your daily limit comes from your role { $role }.
controls-usage-from-member = Your daily limit was set for you by an admin.
controls-quota-footer = Role and member limits, blocked members, 4K access and blocked words: /settings show
controls-not-manager = Only members with the Manage Server permission can change or view these settings.
controls-guild-only = This command works only in a server, not in direct messages.
controls-daily-range = The daily limit must be a whole number from 0 (no limit) to { $max }. Nothing was changed.
controls-role-gone = That role no longer exists in this server. Nothing was changed.
controls-role-everyone = @everyone can't have a limit of its own: use /quota set user_daily for every member.
controls-role-everyone-4k = @everyone can't be listed: use /settings 4k access who:Everyone to open 4K to all.
controls-remove-what = Name a role or a member whose limit to remove.
controls-4k-unknown = Choose Everyone, Only the listed roles, or Nobody.
controls-words-empty = Give one or more words or phrases, separated by commas.
controls-word-too-long =
    Each entry may be at most { $max ->
        [one] { $max } character
       *[other] { $max } characters
    }; one has { $length }. Nothing was changed.
controls-word-no-letters = Each entry needs at least one letter or digit. Nothing was changed.
controls-words-full =
    The list can hold { $max ->
        [one] { $max } entry
       *[other] { $max } entries
    }. It has { $count }, and this would add { $adding }. Nothing was added: remove some first with /settings words remove.
controls-log-channel-no-access = I can't post in { $channel }: I need View Channel and Send Messages there. Nothing was changed.
# $daily is a per-day limit (controls-per-day) or controls-no-limit.
controls-role-limit-set = Daily limit of members with { $role }: { $daily } (the highest of a member's roles counts; a member's own limit wins).
controls-member-limit-set = Daily limit of { $member }: { $daily }, whatever their roles.
controls-role-limit-removed = { $role } has no limit of its own any more.
controls-role-limit-absent = { $role } had no limit of its own.
controls-member-limit-removed = { $member } has no limit of their own any more.
controls-member-limit-absent = { $member } had no limit of their own.
controls-blocked = { $member } is blocked: they can't make images in this server until you run /settings unblock.
controls-already-blocked = { $member } was already blocked.
controls-unblocked = { $member } is no longer blocked.
controls-not-blocked = { $member } wasn't blocked.
controls-4k-everyone = Everyone may use 4K.
controls-4k-off = 4K is off in this server.
controls-4k-roles = Only these roles may use 4K: { $roles }.
controls-4k-roles-none = Only listed roles may use 4K, and none is listed yet: add one with /settings 4k add.
controls-4k-role-added-off = { $role } is listed, but 4K is off in this server: run /settings 4k access to turn it on.
controls-4k-role-absent = { $role } wasn't listed.
controls-words-added =
    Added { $added } to the blocked list ({ $present } already on it). It has { $total ->
        [one] { $total } entry
       *[other] { $total } entries
    }.
controls-words-removed =
    Removed { $removed } from the blocked list. It has { $total ->
        [one] { $total } entry
       *[other] { $total } entries
    }.
controls-words-none-removed = None of those is on the blocked list.
controls-words-list-empty = No words or phrases are blocked in this server.
# Followed by the list, one entry a line.
controls-words-list = Blocked words and phrases ({ $count }):
controls-words-list-file = Blocked words and phrases ({ $count }): the list is attached.
controls-log-channel-set = Refusals and failures worth your attention will be posted in { $channel }.
controls-log-channel-off = Refusals and failures are no longer posted in a channel.
controls-show-title = Server settings
controls-show-default = Daily limit per member (default)
controls-show-roles = Role limits
controls-show-members = Member limits
controls-show-blocked = Blocked members
controls-show-4k = 4K
controls-show-words = Blocked words
controls-show-log = Log channel
controls-show-none = none
controls-show-more = … and { $count } more
controls-show-words-count =
    { $count ->
        [one] { $count } entry
       *[other] { $count } entries
    } (see them with /settings words list)
controls-show-by = { $what } · by { $by } <t:{ $at }:R>
controls-show-footer = A member's own limit wins over their roles; the highest role limit wins over the default. The server's daily limit and the in-progress limit apply to everyone.
controls-no-limit = no limit
controls-per-day = { $count } a day

# /history and /jobs
history-title = 🖼️ History
history-yours = Your images in this server, newest first.
history-by-member = Images by { $member } in this server, newest first.
history-empty-yours = You have no images in this server yet.
history-empty-member = { $member } has no images in this server yet.
history-not-moderator = Only moderators (Manage Messages) can see another member's images.
history-not-viewer = Only the member who opened this list can page through it.
history-previous = Previous
history-next = Next
history-state-delivered = ✅ Delivered
history-state-failed = ⚠️ Failed
history-state-cancelled = 🛑 Cancelled
history-state-in-progress = 🎨 In progress
# $parent is the image it was made from: "#12", linked to its message when known.
history-from-reroll = Re-roll of { $parent }
history-from-edit = Edit of { $parent }
history-from-vary = Variation of { $parent }
history-from-upscale = Upscale of { $parent }
history-from-other = Made from { $parent }
history-jump = Jump to message
history-no-prompt = *(no prompt)*
history-ratio-reference = reference's ratio
history-references =
    { $count ->
        [one] { $count } reference
       *[other] { $count } references
    }
jobs-title = 🎨 In progress
jobs-none = You have no images in progress here.
jobs-more = Showing your { $count } oldest; more are in progress.
jobs-left = { $time } left
jobs-about-few = a few seconds
jobs-about-seconds = about { $seconds } s
jobs-about-minutes = about { $minutes } min
jobs-server-queue = This server's queue
jobs-state-sending = Sending
jobs-state-queued = Queued
jobs-state-generating = Generating
jobs-state-delivering = Delivering
jobs-queue-count = { $state }: { $count }
jobs-new-image = A new { $tier } image would take { $time }.

# Command names and descriptions: /quota, /usage, /settings, /history, /jobs
cmd-quota = quota
    .description = Limit how many images members and the server can make
cmd-quota-set = set
    .description = Change limits; options left out stay as they are, 0 removes a limit
cmd-quota-set-user-daily = user_daily
    .description = Images per member per UTC day, unless a role or member limit applies (0 = no limit)
cmd-quota-set-guild-daily = guild_daily
    .description = Images the whole server may make per UTC day (0 = no limit)
cmd-quota-set-max-concurrent = max_concurrent
    .description = Images each member may have in progress at once (0 = no limit)
cmd-quota-set-weight-4k = weight_4k
    .description = How many images one 4K image counts as (default 2)
cmd-quota-show = show
    .description = Show the limits, today's use and who changed what
cmd-quota-reset = reset
    .description = Give back today's use of one member, or of the whole server
cmd-quota-reset-member = member
    .description = Whose use to reset (leave out to reset the whole server)
cmd-usage = usage
    .description = How many images you can still make today
cmd-settings = settings
    .description = Server controls: role and member limits, blocks, 4K, blocked words, log channel
cmd-settings-show = show
    .description = Show role and member limits, blocks, 4K, blocked words, log channel
cmd-settings-limit = limit
    .description = Daily limits of roles and members
cmd-settings-limit-role = role
    .description = Daily limit for members with a role (the highest of their roles counts)
cmd-settings-limit-role-role = role
    .description = The role
cmd-settings-limit-role-daily = daily
    .description = Images per UTC day for members with this role (0 = no limit)
cmd-settings-limit-member = member
    .description = Daily limit for one member, whatever their roles
cmd-settings-limit-member-member = member
    .description = The member
cmd-settings-limit-member-daily = daily
    .description = Images per UTC day for this member (0 = no limit)
cmd-settings-limit-remove = remove
    .description = Remove the limit of a role or of a member
cmd-settings-limit-remove-role = role
    .description = The role whose limit to remove
cmd-settings-limit-remove-member = member
    .description = The member whose limit to remove
cmd-settings-block = block
    .description = Stop a member from making images in this server
cmd-settings-block-member = member
    .description = The member to block
cmd-settings-unblock = unblock
    .description = Let a blocked member make images again
cmd-settings-unblock-member = member
    .description = The member to unblock
cmd-settings-4k = 4k
    .description = Who may make 4K images
cmd-settings-4k-access = access
    .description = Who may make 4K images in this server
cmd-settings-4k-access-who = who
    .description = Everyone, only the listed roles (/settings 4k add), or nobody
choice-everyone = Everyone
choice-roles = Only the listed roles
choice-off = Nobody (4K off)
cmd-settings-4k-add = add
    .description = Let a role make 4K images (4K then is for the listed roles only)
cmd-settings-4k-add-role = role
    .description = The role that may use 4K
cmd-settings-4k-remove = remove
    .description = Take 4K away from a listed role
cmd-settings-4k-remove-role = role
    .description = The role
cmd-settings-words = words
    .description = Words and phrases prompts may not contain
cmd-settings-words-add = add
    .description = Block words or phrases in prompts (case and accents don't matter)
cmd-settings-words-add-words = words
    .description = Words or phrases, separated by commas (each matches whole words only)
cmd-settings-words-remove = remove
    .description = Unblock words or phrases
cmd-settings-words-remove-words = words
    .description = Words or phrases, separated by commas
cmd-settings-words-list = list
    .description = Show the blocked words and phrases (only to you)
cmd-settings-log-channel = log-channel
    .description = Where refusals and failures are posted for admins
cmd-settings-log-channel-channel = channel
    .description = The channel (leave out to stop posting them)
cmd-history = history
    .description = Your recent images in this server (or a member's)
cmd-history-member = member
    .description = Whose images (moderators only; default: yours)
cmd-jobs = jobs
    .description = Your images in progress here (and the server's queue for admins)
